#pragma once
// The one way the CUDA sources declare a shared array: TREERPO_SHARED(type, name, [dims]...) is
// nvcc's __shared__. Where a kernel's source is compiled for the CPU simulator the tests run,
// tests/common/cuda_sim_builtins.h defines TREERPO_CUDA_SIM and this macro: an array the simulator
// poisons at each block's start, so that a read of a value no thread of the block wrote shows.
#ifndef TREERPO_CUDA_SIM
#define TREERPO_SHARED(type, name, dims) __shared__ type name dims
#endif
