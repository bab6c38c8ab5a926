#include "treerpo/util/device_memory.h"

#include <c10/core/CachingDeviceAllocator.h>

#include "treerpo/util/allocation_counter.h"

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

} // namespace treerpo
