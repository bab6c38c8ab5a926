#pragma once
// Peak bytes of tensor memory a device held since the last reset, for the memory of each phase of
// a training step: the caching allocator's allocated-bytes peak on an accelerator (CUDA), the
// AllocationCounter's on the CPU when one is installed (benchmarks and tests); nothing otherwise.
// Bytes the allocator requested, not RSS or reserved segments: what the memory plan counts.
#include <cstdint>
#include <optional>

#include <c10/core/Device.h>

namespace treerpo {

std::optional<int64_t> allocated_peak_bytes(const c10::Device& device);
// The peak of the segments the caching allocator reserved from the device (CUDA) since the last
// reset: what the card must hold, the allocated bytes plus the cached blocks and fragmentation
// between them (what model.memory_gb caps). Nothing on the CPU, which has no segments.
std::optional<int64_t> reserved_peak_bytes(const c10::Device& device);
// Both peaks restart from the bytes allocated and reserved now.
void reset_allocated_peak(const c10::Device& device);
// Caps what the CUDA caching allocator may hold on `device` at `gib` GiB (its memory fraction):
// allocations past it fail as out of memory. Throws bad_input when the device has less.
void cap_device_memory(const c10::Device& device, double gib);
// Bytes new tensors can still take on `device`: on CUDA the driver's free memory plus what the
// caching allocator holds unused, within `cap_gib` (model.memory_gb; 0: none) less what is
// allocated; on the CPU the kernel's MemAvailable (/proc/meminfo). Throws runtime_failure when
// the CPU's figure cannot be read.
int64_t free_memory_bytes(const c10::Device& device, double cap_gib = 0);

} // namespace treerpo
