#include "treerpo/util/checksums.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <openssl/evp.h>

#include "treerpo/util/error.h"

namespace fs = std::filesystem;

namespace treerpo {
namespace {

bool is_hex_digest(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A name that stays inside the folder: no separators, not "." or "..", no control bytes.
bool is_plain_name(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    return c == '/' || c == '\\' || static_cast<unsigned char>(c) < 32;
  });
}

std::vector<std::string> files_of(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name != kChecksumsFile) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw runtime_failure("cannot read file", path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    EVP_DigestUpdate(ctx, buffer.data(), static_cast<size_t>(in.gcount()));
  }
  const bool read_all = in.eof() && !in.bad();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  if (!read_all) throw runtime_failure("read error", path);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

void write_checksums(const std::string& dir) {
  std::string text;
  for (const std::string& name : files_of(dir))
    text += sha256_of_file((fs::path(dir) / name).string()) + "  " + name + "\n";
  const fs::path path = fs::path(dir) / kChecksumsFile;
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw runtime_failure("write failed (disk full?)", path.string());
}

std::vector<std::pair<std::string, std::string>> parse_checksums(const std::string& text,
                                                                 const std::string& where) {
  std::vector<std::pair<std::string, std::string>> entries;
  std::set<std::string> seen;
  if (!text.empty() && text.back() != '\n')
    throw bad_input("last line has no newline (truncated?)", where);
  size_t start = 0;
  for (int line_no = 1; start < text.size(); ++line_no) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const std::string at = where + ":" + std::to_string(line_no);
    // sha256sum writes "<digest>  <name>" (two spaces: text mode; " *" would be binary mode).
    if (line.size() < 67 || line.compare(64, 2, "  ") != 0 || !is_hex_digest(line.substr(0, 64)))
      throw bad_input("not a \"<sha256>  <file>\" line", at);
    const std::string name = line.substr(66);
    if (!is_plain_name(name)) throw bad_input("not a file name of this folder", at);
    if (!seen.insert(name).second) throw bad_input("file listed twice", at);
    entries.emplace_back(name, line.substr(0, 64));
  }
  return entries;
}

std::optional<std::string> checksum_problem(const std::string& dir) {
  const fs::path path = fs::path(dir) / kChecksumsFile;
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::pair<std::string, std::string>> entries;
  try {
    entries = parse_checksums(text, kChecksumsFile);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  std::set<std::string> listed;
  for (const auto& [name, digest] : entries) {
    listed.insert(name);
    const fs::path file = fs::path(dir) / name;
    if (!fs::is_regular_file(file)) return name + " is missing";
    if (sha256_of_file(file.string()) != digest)
      return name + ": SHA-256 differs from " + kChecksumsFile + " (truncated or altered)";
  }
  for (const std::string& name : files_of(dir)) {
    if (!listed.count(name)) return name + " is not listed in " + kChecksumsFile;
  }
  return std::nullopt;
}

void require_intact(const std::string& dir) {
  if (auto problem = checksum_problem(dir)) {
    throw bad_input("damaged checkpoint: " + *problem, dir,
                    "use another checkpoint (or delete SHA256SUMS to load it unchecked)");
  }
}

} // namespace treerpo
