// libFuzzer target: tokenizer.json loading, then encode and decode of arbitrary bytes with what
// loaded. The input is split at its first NUL into tokenizer.json and a text; seeds are real
// tokenizer files, so mutations reach both the loader and the encoder. Beyond "no crash": encode
// yields ids below vocab_size(), and decode takes any id (unknown ones are skipped).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "files.h"
#include "treerpo/tokenizer/tokenizer.h"
#include "treerpo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto [json, text] = treerpo::fuzz::split_at_nul(data, size);
  std::unique_ptr<treerpo::tokenizer::Tokenizer> tok;
  try {
    tok = treerpo::tokenizer::Tokenizer::load(treerpo::fuzz::write_file("tokenizer.json", json));
  } catch (const treerpo::Error&) {
    return 0; // refused with a message: the expected outcome for most inputs
  }
  const std::vector<int32_t> ids = tok->encode(text);
  for (int32_t id : ids) {
    if (id < 0 || id >= tok->vocab_size()) std::abort();
  }
  tok->decode(ids);
  tok->decode(ids, true);
  // The text's bytes read as ids (any value, unknown ones included).
  std::vector<int32_t> arbitrary;
  for (std::size_t i = 0; i + 4 <= text.size(); i += 4) {
    int32_t id = 0;
    for (int b = 0; b < 4; ++b)
      id |= static_cast<int32_t>(static_cast<uint8_t>(text[i + b])) << (8 * b);
    arbitrary.push_back(id % (tok->vocab_size() + 8));
  }
  tok->decode(arbitrary);
  treerpo::tokenizer::StreamDecoder stream(*tok);
  for (int32_t id : arbitrary) stream.push(id);
  return 0;
}
