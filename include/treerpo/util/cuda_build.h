#pragma once
// What this binary's CUDA code was compiled for. The CUDA build (util/cuda/cuda_build.cu) reads it
// off nvcc itself, so `treerpo-train version` reports what was really compiled, not what CMake was
// asked.
#include <vector>

namespace treerpo {

struct CudaBuild {
  bool compiled = false;  // the CUDA sources are part of this binary
  std::vector<int> archs; // compute capabilities x 10 (89 = sm_89), in nvcc's order
  int runtime_version =
      0; // CUDA runtime the binary was compiled against (13000 = 13.0), 0 without CUDA
};

CudaBuild cuda_build();

} // namespace treerpo
