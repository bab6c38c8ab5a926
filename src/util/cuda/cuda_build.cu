// nvcc defines __CUDA_ARCH_LIST__ (the virtual architectures of this compilation, e.g. 890,900) in
// every pass, host included, and CUDART_VERSION names the runtime headers; both describe what was
// compiled.
#include <cuda_runtime_api.h>

#include "treerpo/util/cuda_build.h"

#ifndef __CUDA_ARCH_LIST__
#error "nvcc 11.5 or newer is needed (it defines __CUDA_ARCH_LIST__)"
#endif

namespace treerpo {

CudaBuild cuda_build() {
  CudaBuild build;
  build.compiled = true;
  for (int arch : {__CUDA_ARCH_LIST__}) build.archs.push_back(arch / 10);
  build.runtime_version = CUDART_VERSION;
  return build;
}

} // namespace treerpo
