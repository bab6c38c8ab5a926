#include "treerpo/util/device_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include <c10/core/CachingDeviceAllocator.h>
#include <fmt/format.h>

#include "treerpo/util/allocation_counter.h"
#include "treerpo/util/error.h"

#ifdef TREERPO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace treerpo {
namespace {

constexpr auto kAggregate = static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE);

// MemAvailable of /proc/meminfo, in bytes (the kernel's estimate of what can be allocated without
// swapping).
int64_t host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    int64_t kib = -1;
    std::string unit;
    if (fields >> kib >> unit && kib >= 0 && unit == "kB") return kib * 1024;
    break;
  }
  throw runtime_failure("cannot read the host's available memory", "/proc/meminfo MemAvailable",
                        "set rollout.kv_cache_tokens instead of a memory fraction");
}

} // namespace

std::optional<int64_t> allocated_peak_bytes(const c10::Device& device) {
  if (device.is_cpu()) {
    const AllocationCounter* counter = AllocationCounter::installed();
    if (counter == nullptr) return std::nullopt;
    return counter->peak_bytes();
  }
  return c10::getDeviceAllocator(device.type())
      ->getDeviceStats(device.index() < 0 ? 0 : device.index())
      .allocated_bytes[kAggregate]
      .peak;
}

std::optional<int64_t> reserved_peak_bytes(const c10::Device& device) {
  if (device.is_cpu()) return std::nullopt;
  return c10::getDeviceAllocator(device.type())
      ->getDeviceStats(device.index() < 0 ? 0 : device.index())
      .reserved_bytes[kAggregate]
      .peak;
}

void reset_allocated_peak(const c10::Device& device) {
  if (device.is_cpu()) {
    if (AllocationCounter* counter = AllocationCounter::installed()) counter->reset_peak();
    return;
  }
  c10::getDeviceAllocator(device.type())->resetPeakStats(device.index() < 0 ? 0 : device.index());
}

void cap_device_memory(const c10::Device& device, double gib) {
  if (!device.is_cuda()) {
    throw bad_input("a memory cap applies to CUDA devices, not " + device.str(), "model.memory_gb",
                    "leave it 0");
  }
#ifdef TREERPO_WITH_CUDA
  const c10::DeviceIndex index = device.index() < 0 ? 0 : device.index();
  const auto [free, total] = c10::cuda::CUDACachingAllocator::get()->getMemoryInfo(index);
  (void)free;
  const double cap = gib * static_cast<double>(int64_t{1} << 30);
  if (cap > static_cast<double>(total)) {
    throw bad_input(fmt::format("{:.1f} GiB is more than the device's {:.1f} GiB", gib,
                                static_cast<double>(total) / static_cast<double>(int64_t{1} << 30)),
                    "model.memory_gb", "lower it or set 0 for the whole device");
  }
  c10::cuda::CUDACachingAllocator::setMemoryFraction(cap / static_cast<double>(total), index);
#else
  (void)gib;
  throw bad_input("this build has no CUDA", "model.memory_gb", "leave it 0");
#endif
}

int64_t free_memory_bytes(const c10::Device& device, double cap_gib) {
  if (device.is_cpu()) return host_available_bytes();
#ifdef TREERPO_WITH_CUDA
  if (device.is_cuda()) {
    const c10::DeviceIndex index = device.index() < 0 ? 0 : device.index();
    auto* allocator = c10::cuda::CUDACachingAllocator::get();
    const auto [driver_free, total] = allocator->getMemoryInfo(index);
    (void)total;
    const auto stats = allocator->getDeviceStats(index);
    const int64_t allocated = stats.allocated_bytes[kAggregate].current;
    const int64_t cached_unused = stats.reserved_bytes[kAggregate].current - allocated;
    int64_t free = static_cast<int64_t>(driver_free) + cached_unused;
    if (cap_gib > 0) {
      const auto cap = static_cast<int64_t>(cap_gib * static_cast<double>(int64_t{1} << 30));
      free = std::min(free, cap - allocated);
    }
    return std::max<int64_t>(0, free);
  }
#else
  (void)cap_gib;
#endif
  throw runtime_failure("free memory is known for the CPU and CUDA devices, not " + device.str(),
                        "rollout.kv_cache_memory_fraction", "set rollout.kv_cache_tokens instead");
}

} // namespace treerpo
