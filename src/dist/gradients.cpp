#include "treerpo/dist/gradients.h"

#include <torch/torch.h>

namespace treerpo::dist {

int64_t sum_gradients(World& world, std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (!world.joined()) return 0;
  std::vector<at::Tensor> grads;
  for (at::Tensor& p : params) {
    at::Tensor& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    grads.push_back(g);
  }
  // Consecutive gradients of one dtype share a bucket until it would pass bucket_bytes.
  std::vector<std::vector<size_t>> buckets;
  int64_t filled = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const int64_t bytes = grads[i].numel() * static_cast<int64_t>(grads[i].element_size());
    const bool fits = !buckets.empty() && filled + bytes <= bucket_bytes &&
                      grads[buckets.back().front()].scalar_type() == grads[i].scalar_type();
    if (!fits) buckets.emplace_back(), filled = 0;
    buckets.back().push_back(i);
    filled += bytes;
  }
  std::vector<at::Tensor> flat;
  int64_t sent = 0;
  for (const auto& bucket : buckets) {
    std::vector<at::Tensor> parts;
    for (size_t i : bucket) parts.push_back(grads[i].reshape({-1}));
    flat.push_back(torch::cat(parts));
    sent += flat.back().numel() * static_cast<int64_t>(flat.back().element_size());
  }
  world.sum(flat, "gradients");
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (size_t i : buckets[b]) {
      const int64_t n = grads[i].numel();
      grads[i].copy_(flat[b].narrow(0, offset, n).view_as(grads[i]));
      offset += n;
    }
  }
  return sent;
}

} // namespace treerpo::dist
