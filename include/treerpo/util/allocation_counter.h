#pragma once
// Counts the bytes of every CPU tensor allocation LibTorch makes: live bytes now and the peak of
// live bytes, so a test (or a benchmark) can hold the memory plan (`treerpo-train plan`) to what a
// forward and backward really allocate. It wraps LibTorch's CPU allocator; each allocation's
// deleter context remembers its size, so a tensor freed on any thread subtracts exactly what it
// added. Views share their storage and count once.
#include <atomic>
#include <cstdint>

namespace treerpo {

class AllocationCounter {
public:
  // Installs the counter as LibTorch's CPU allocator (once; later calls return the same counter).
  // Only allocations made after the first call are counted.
  static AllocationCounter& install();
  // The counter if install() ran, else null (nothing is being counted).
  static AllocationCounter* installed();

  int64_t live_bytes() const { return live_.load(std::memory_order_relaxed); }
  int64_t peak_bytes() const { return peak_.load(std::memory_order_relaxed); }
  // The peak restarts from the bytes live now.
  void reset_peak() { peak_.store(live_bytes(), std::memory_order_relaxed); }

  // Called by the allocator's allocate and deleter.
  void add(int64_t bytes);
  void remove(int64_t bytes) { live_.fetch_sub(bytes, std::memory_order_relaxed); }

private:
  AllocationCounter() = default;
  std::atomic<int64_t> live_{0}, peak_{0};
};

} // namespace treerpo
