#include "treerpo/util/host_transfer.h"

#include <algorithm>
#include <atomic>

#include <ATen/ATen.h>

namespace treerpo {

namespace {
std::atomic<int64_t> transfers{0};

template <typename T>
at::Tensor upload(const std::vector<T>& values, at::ScalarType type, const c10::Device& device) {
  const auto n = static_cast<int64_t>(values.size());
  auto options = at::TensorOptions().dtype(type);
  at::Tensor host = at::empty({n}, options.pinned_memory(!device.is_cpu()));
  std::copy(values.begin(), values.end(), host.data_ptr<T>());
  return device.is_cpu() ? host : host.to(device, /*non_blocking=*/true);
}
} // namespace

at::Tensor to_host(const at::Tensor& t) {
  transfers.fetch_add(1, std::memory_order_relaxed);
  return t.to(at::kCPU).contiguous();
}

int64_t host_transfers() {
  return transfers.load(std::memory_order_relaxed);
}

at::Tensor to_device(const std::vector<int64_t>& values, const c10::Device& device) {
  return upload(values, at::kLong, device);
}

at::Tensor to_device(const std::vector<float>& values, const c10::Device& device) {
  return upload(values, at::kFloat, device);
}

} // namespace treerpo
