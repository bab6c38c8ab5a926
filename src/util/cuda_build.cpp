// The CPU twin of util/cuda/cuda_build.cu: a build without CUDA sources reports none.
#include "treerpo/util/cuda_build.h"

namespace treerpo {

CudaBuild cuda_build() {
  return {};
}

} // namespace treerpo
