#pragma once
// Device-to-host copies, counted: every place the rollout reads a device tensor on the host goes
// through to_host, so a benchmark can report synchronisations per step from the code itself
// (on the CPU the copy is free, and the count is still the one a GPU run makes).
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace treerpo {

// A contiguous CPU copy of t (t itself when it already is one); counts one transfer.
at::Tensor to_host(const at::Tensor& t);
// Transfers counted so far in this process.
int64_t host_transfers();

// The other way, for the small arrays a step sends up (ids, indices, uniforms): on a GPU from
// pinned memory and non-blocking, so the host does not wait for the copy (the caching host
// allocator keeps the buffer until it has run); on the CPU a plain tensor.
at::Tensor to_device(const std::vector<int64_t>& values, const c10::Device& device);
at::Tensor to_device(const std::vector<float>& values, const c10::Device& device);

} // namespace treerpo
