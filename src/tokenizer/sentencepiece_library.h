#pragma once
// libsentencepiece behind a private symbol scope. Debian's libsentencepiece carries its own
// protobuf 3.14 with exported symbols, which clash with LibTorch's libprotobuf in one process (a
// crash at startup), so it is never linked into treerpo: a small module linking it is dlopen'ed
// with RTLD_DEEPBIND on first use.
#include <string>
#include <vector>

namespace treerpo::tokenizer {

// Plain functions over an opaque processor; std types cross the boundary (same C++ runtime).
struct SentencePieceLibrary {
  void* (*load)(const std::string& path, std::string* error);
  void (*destroy)(void* processor);
  bool (*encode)(void* processor, const std::string& text, std::vector<int>* ids,
                 std::string* error);
  std::string (*decode_ids)(void* processor, const std::vector<int>& ids);
  int (*piece_size)(void* processor);
  std::string (*id_to_piece)(void* processor, int id);
  int (*piece_to_id)(void* processor, const std::string& piece);
  // Bit 1: control, 2: unknown, 4: byte piece.
  int (*kind)(void* processor, int id);
  int (*eos_id)(void* processor);
  int (*pad_id)(void* processor);
};

inline constexpr int kControlPiece = 1, kUnknownPiece = 2, kBytePiece = 4;

// Loads the module once; throws runtime_failure if it cannot be opened.
const SentencePieceLibrary& sentencepiece_library();

} // namespace treerpo::tokenizer
