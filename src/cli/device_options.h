#pragma once
// --device and --dtype as the inference subcommands (eval, generate) parse them.
#include <regex>
#include <string>

#include <torch/cuda.h>
#include <torch/types.h>

#include "treerpo/util/error.h"

namespace treerpo::cli {

inline torch::Device parse_device(const std::string& name) {
  if (!std::regex_match(name, std::regex("cpu|cuda(:[0-9]+)?"))) {
    throw bad_input("unknown device '" + name + "'", "--device", "use cpu, cuda or cuda:N");
  }
  torch::Device device(name);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw bad_input("CUDA is not available in this build or on this machine", "--device",
                    "use --device cpu");
  }
  return device;
}

inline torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  throw bad_input("unknown dtype '" + name + "'", "--dtype", "use float32 or bfloat16");
}

} // namespace treerpo::cli
