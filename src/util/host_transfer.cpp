#include "treerpo/util/host_transfer.h"

#include <atomic>

#include <ATen/ATen.h>

namespace treerpo {

namespace {
std::atomic<int64_t> transfers{0};
}

at::Tensor to_host(const at::Tensor& t) {
  transfers.fetch_add(1, std::memory_order_relaxed);
  return t.to(at::kCPU).contiguous();
}

int64_t host_transfers() {
  return transfers.load(std::memory_order_relaxed);
}

} // namespace treerpo
