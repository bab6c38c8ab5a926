#include "treerpo/util/allocation_counter.h"

#include <memory>

#include <c10/core/CPUAllocator.h>

namespace treerpo {
namespace {

// What a counted allocation's deleter needs: the wrapped allocation and its size.
struct Counted {
  void* context;
  c10::DeleterFnPtr deleter;
  int64_t bytes;
  AllocationCounter* counter;
};

void delete_counted(void* ptr) {
  std::unique_ptr<Counted> counted(static_cast<Counted*>(ptr));
  if (counted->deleter != nullptr) counted->deleter(counted->context);
  counted->counter->remove(counted->bytes);
}

class CountingAllocator final : public c10::Allocator {
public:
  CountingAllocator(c10::Allocator* wrapped, AllocationCounter* counter)
      : wrapped_(wrapped), counter_(counter) {}

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr inner = wrapped_->allocate(n);
    void* data = inner.get();
    const c10::Device device = inner.device();
    const c10::DeleterFnPtr deleter = inner.get_deleter();
    auto counted = std::make_unique<Counted>(
        Counted{inner.release_context(), deleter, static_cast<int64_t>(n), counter_});
    counter_->add(static_cast<int64_t>(n));
    return {data, counted.release(), &delete_counted, device};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

private:
  c10::Allocator* wrapped_;
  AllocationCounter* counter_;
};

// Above the default CPU allocator's registration (priority 0), so ours is the one GetCPUAllocator
// returns from now on.
constexpr uint8_t kCountingPriority = 100;

std::atomic<AllocationCounter*> g_installed{nullptr};

} // namespace

void AllocationCounter::add(int64_t bytes) {
  const int64_t live = live_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (live > peak && !peak_.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

AllocationCounter& AllocationCounter::install() {
  // A function-local static: thread-safe, and installed exactly once however often it is called.
  // Both live until exit and are never destroyed: tensors freed by static destructors still count.
  static AllocationCounter* counter = [] {
    auto* c = new AllocationCounter();
    c10::SetCPUAllocator(new CountingAllocator(c10::GetCPUAllocator(), c), kCountingPriority);
    g_installed.store(c);
    return c;
  }();
  return *counter;
}

AllocationCounter* AllocationCounter::installed() {
  return g_installed.load();
}

} // namespace treerpo
