#pragma once
// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (PyTorch wheels, CUDA) differ for us.
// Everything else in the project calls these names and never tests TORCH_VERSION_* itself.
#include <torch/version.h>

#define TREERPO_TORCH_AT_LEAST(major, minor)                                                    \
  (TORCH_VERSION_MAJOR > (major) ||                                                             \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
