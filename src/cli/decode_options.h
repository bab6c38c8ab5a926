#pragma once
// --decode-attention and --decode-shapes as `generate` and `bench rollout` parse them: one place
// for the names and for the combinations that are not built (fixed shapes and graphs run the paged
// kernel; graphs are recorded on CUDA only).
#include <string>

#include <torch/types.h>

#include "treerpo/model/paged_attention.h"
#include "treerpo/rollout/qwen2_branches.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {

// `command` prefixes the option in messages ("bench rollout ", or "" for generate).
inline model::DecodeAttention parse_decode_attention(const std::string& name,
                                                     const std::string& command) {
  if (name != "torch" && name != "paged_kernel") {
    throw bad_input("unknown decode attention '" + name + "'", command + "--decode-attention",
                    "use torch or paged_kernel");
  }
  return model::decode_attention_from_name(name);
}

inline rollout::DecodeShapes parse_decode_shapes(const std::string& name,
                                                 model::DecodeAttention attention,
                                                 const torch::Device& device,
                                                 const std::string& command) {
  using rollout::DecodeShapes;
  const DecodeShapes shapes = name == "fixed"         ? DecodeShapes::Fixed
                              : name == "cuda_graphs" ? DecodeShapes::CudaGraphs
                                                      : DecodeShapes::Dynamic;
  if (shapes == DecodeShapes::Dynamic && name != "dynamic") {
    throw bad_input("unknown decode shapes '" + name + "'", command + "--decode-shapes",
                    "use dynamic, fixed or cuda_graphs");
  }
  if (shapes == DecodeShapes::CudaGraphs && !device.is_cuda()) {
    throw bad_input("--decode-shapes cuda_graphs records CUDA graphs; the device is " +
                        device.str(),
                    command + "--device", "use --device cuda, or --decode-shapes fixed");
  }
  if (shapes != DecodeShapes::Dynamic && attention != model::DecodeAttention::PagedKernel) {
    throw bad_input("--decode-shapes " + name + " runs the paged kernel",
                    command + "--decode-attention", "use paged_kernel");
  }
  return shapes;
}

} // namespace treerpo::cli
