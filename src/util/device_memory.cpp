#include "treerpo/util/device_memory.h"

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

} // namespace treerpo
