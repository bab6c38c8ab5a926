#pragma once
// What the optimiser holds and makes, in bytes, for the memory plan (`treerpo-train plan`) and the
// tests that hold the plan to the counting allocator. The update (adamw.cpp) runs parameter by
// parameter in chunks of at most kStepChunkElements elements, each chunk making at most
// kStepTemporaryFloats float32 temporaries of the chunk's size: no temporary the size of the
// embedding.
#include <algorithm>
#include <cstdint>
#include <string_view>

namespace treerpo::train {

inline constexpr int64_t kStepChunkElements = int64_t{1} << 20;
inline constexpr int64_t kStepTemporaryFloats = 6;

// Persistent optimiser state per parameter element: train.optimizer `adamw` keeps two float32
// moments (+ a Kahan buffer in the weight's dtype when it is bfloat16), `adamw-bf16` two bfloat16
// moments and nothing else.
constexpr int64_t optimizer_state_bytes_per_element(std::string_view optimizer,
                                                    bool bfloat16_weights) {
  if (optimizer == "adamw-bf16") return 4;
  return 8 + (bfloat16_weights ? 2 : 0);
}

// The step's peak temporaries for a model whose largest parameter has `largest_numel` elements.
constexpr int64_t optimizer_step_temporary_bytes(int64_t largest_numel) {
  return kStepTemporaryFloats * 4 * std::min(largest_numel, kStepChunkElements);
}

} // namespace treerpo::train
