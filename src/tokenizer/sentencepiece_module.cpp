// The module that links libsentencepiece; see sentencepiece_library.h for why it is loaded
// separately.
#include <sentencepiece_processor.h>

#include "sentencepiece_library.h"

namespace treerpo::tokenizer {
namespace {

sentencepiece::SentencePieceProcessor* as_sp(void* p) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(p);
}

const SentencePieceLibrary kLibrary = {
    [](const std::string& path, std::string* error) -> void* {
      auto* sp = new sentencepiece::SentencePieceProcessor();
      const auto status = sp->Load(path);
      if (status.ok()) return sp;
      *error = status.ToString();
      delete sp;
      return nullptr;
    },
    [](void* p) { delete as_sp(p); },
    [](void* p, const std::string& text, std::vector<int>* ids, std::string* error) {
      const auto status = as_sp(p)->Encode(text, ids);
      if (!status.ok()) *error = status.ToString();
      return status.ok();
    },
    [](void* p, const std::vector<int>& ids) { return as_sp(p)->DecodeIds(ids); },
    [](void* p) { return as_sp(p)->GetPieceSize(); },
    [](void* p, int id) { return as_sp(p)->IdToPiece(id); },
    [](void* p, const std::string& piece) { return as_sp(p)->PieceToId(piece); },
    [](void* p, int id) {
      return (as_sp(p)->IsControl(id) ? kControlPiece : 0) |
             (as_sp(p)->IsUnknown(id) ? kUnknownPiece : 0) |
             (as_sp(p)->IsByte(id) ? kBytePiece : 0);
    },
    [](void* p) { return as_sp(p)->eos_id(); },
    [](void* p) { return as_sp(p)->pad_id(); },
};

} // namespace
} // namespace treerpo::tokenizer

extern "C" const treerpo::tokenizer::SentencePieceLibrary* treerpo_sentencepiece_library() {
  return &treerpo::tokenizer::kLibrary;
}
