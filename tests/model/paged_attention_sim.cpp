// The CUDA paged decode attention's own source (src/model/cuda/paged_attention.cu) compiled for the
// CPU simulator. Its functions live in treerpo::model::simulated_cuda, beside the library's real
// treerpo::model::cuda ones; paged_attention_sim_test.cpp declares them the same way.
#include "../common/cuda_sim_builtins.h"

#define cuda simulated_cuda
#include "../../src/model/cuda/paged_attention.cu"
#undef cuda
