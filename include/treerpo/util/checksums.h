#pragma once
// Checksums recorded when a checkpoint is saved, so a later load can tell a damaged folder (a
// truncated file, a flipped byte anywhere, tensor data included) from an intact one. DIR/SHA256SUMS
// lists the SHA-256 of every other file of the folder in `sha256sum` format, so
// `cd DIR && sha256sum -c SHA256SUMS` checks it too. A folder without SHA256SUMS (a plain Hugging
// Face download) is not checked.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace treerpo {

inline constexpr const char* kChecksumsFile = "SHA256SUMS";

// Hex SHA-256 of a file's bytes; a runtime failure when it cannot be read.
std::string sha256_of_file(const std::string& path);

// Writes DIR/SHA256SUMS for every regular file in DIR (sub-folders are not part of a checkpoint).
void write_checksums(const std::string& dir);

// (file name, hex digest) pairs of a SHA256SUMS text. Throws bad_input (at `where`:line) on a line
// that is not "<64 hex digits>  <plain file name>\n", a repeated name, or a missing final newline
// (a truncated file).
std::vector<std::pair<std::string, std::string>> parse_checksums(const std::string& text,
                                                                 const std::string& where);

// Why DIR does not match its SHA256SUMS ("model.safetensors: SHA-256 differs from SHA256SUMS"),
// or nothing when it matches or has no SHA256SUMS. Every file of the folder must be listed: a
// truncated SHA256SUMS shows as an unlisted file.
std::optional<std::string> checksum_problem(const std::string& dir);

// Throws bad_input naming DIR and the problem when checksum_problem(dir) finds one.
void require_intact(const std::string& dir);

} // namespace treerpo
