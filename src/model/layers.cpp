#include "treerpo/model/layers.h"

namespace treerpo::model {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor x32 = x.to(torch::kFloat32);
  torch::Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor>
rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta, torch::Dtype dtype) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(positions.device());
  torch::Tensor exponents = torch::arange(0, head_dim, 2, f32.dtype(torch::kInt64)).to(f32) /
                            static_cast<double>(head_dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(theta, exponents);
  torch::Tensor angles = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;
  torch::Tensor full = torch::cat({angles, angles}, -1);
  return {full.cos().to(dtype), full.sin().to(dtype)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

} // namespace treerpo::model
