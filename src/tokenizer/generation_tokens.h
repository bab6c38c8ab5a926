#pragma once
// Which tokens end a generation and which pads a batch, from a model folder's tokenizer_config.json
// and generation_config.json.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::tokenizer {

struct GenerationTokens {
  std::vector<int32_t> eos_ids;
  std::optional<int32_t> pad_id;
};

// `folder` may be empty (a tokenizer file given directly): then only the chat terminators
// <|im_end|> and
// <|endoftext|> (where the vocabulary has them) and `backend_eos` / `backend_pad` count.
// Throws bad_input for unreadable or malformed config files, or tokens they name that do not exist.
GenerationTokens read_generation_tokens(const std::string& folder, const Tokenizer& tok,
                                        std::optional<int32_t> backend_eos,
                                        std::optional<int32_t> backend_pad);

} // namespace treerpo::tokenizer
