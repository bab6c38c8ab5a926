#include "treerpo/train/adamw.h"

#include <cmath>

#include <torch/serialize.h>

#include "treerpo/util/error.h"

namespace treerpo::train {

AdamW::AdamW(std::vector<torch::Tensor> params, const AdamWOptions& options)
    : params_(std::move(params)), options_(options) {
  auto f32 = [](const torch::Tensor& p) {
    return torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32));
  };
  for (const torch::Tensor& p : params_) {
    exp_avg_.push_back(f32(p));
    exp_avg_sq_.push_back(f32(p));
    compensation_.push_back(p.scalar_type() == torch::kBFloat16 ? torch::zeros_like(p)
                                                                : torch::Tensor());
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  steps_ += 1;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    const torch::Tensor g = p.grad().to(torch::kFloat32);
    torch::Tensor &m = exp_avg_[i], &v = exp_avg_sq_[i];
    m.mul_(b1).add_(g, 1.0 - b1);
    v.mul_(b2).addcmul_(g, g, 1.0 - b2);
    const torch::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(options_.eps);
    if (!compensation_[i].defined()) {
      // float32: torch.optim.AdamW's own sequence of operations.
      p.mul_(1.0 - lr * options_.weight_decay);
      p.addcdiv_(m, denom, -lr / bias1);
      continue;
    }
    // bfloat16: the exact float32 target is the stored weight plus what earlier rounding lost
    // plus this update; store its bf16 rounding and keep the new remainder.
    torch::Tensor& c = compensation_[i];
    const torch::Tensor w = p.to(torch::kFloat32);
    torch::Tensor target = w * (1.0 - lr * options_.weight_decay);
    target.addcdiv_(m, denom, -lr / bias1).add_(c.to(torch::kFloat32));
    p.copy_(target);
    c.copy_(target - p.to(torch::kFloat32));
  }
}

void AdamW::zero_grad() {
  for (torch::Tensor& p : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

void AdamW::save(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  archive.write("steps", torch::tensor(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string n = std::to_string(i);
    archive.write("exp_avg." + n, exp_avg_[i]);
    archive.write("exp_avg_sq." + n, exp_avg_sq_[i]);
    if (compensation_[i].defined()) archive.write("compensation." + n, compensation_[i]);
  }
  archive.save_to(path);
}

void AdamW::load(const std::string& path) {
  const std::string hint = "resume from a checkpoint this version wrote for the same model and "
                           "model.dtype, or start a new checkpoint.dir";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor steps;
    archive.read("steps", steps);
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string n = std::to_string(i);
      auto read_like = [&](const std::string& key, torch::Tensor& into) {
        torch::Tensor t;
        archive.read(key, t);
        if (!t.sizes().equals(into.sizes()) || t.scalar_type() != into.scalar_type())
          throw bad_input(key + " does not match the model's parameter " + n, path, hint);
        into.copy_(t);
      };
      read_like("exp_avg." + n, exp_avg_[i]);
      read_like("exp_avg_sq." + n, exp_avg_sq_[i]);
      if (compensation_[i].defined()) read_like("compensation." + n, compensation_[i]);
    }
    // A step count is one non-negative integer; anything else would skew bias correction.
    if (steps.numel() != 1 || steps.is_floating_point() || steps.item<int64_t>() < 0)
      throw bad_input("steps is not a non-negative integer", path, hint);
    steps_ = steps.item<int64_t>();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw bad_input("not this optimiser's state (" + std::string(e.what_without_backtrace()) + ")",
                    path, hint);
  } catch (const std::exception& e) {
    // LibTorch's unpickler also throws torch::jit::ErrorReport (not a c10::Error) on a damaged
    // archive, e.g. an unknown type name: found by fuzzing optimizer.pt.
    std::string what = e.what();
    what = what.substr(0, what.find('\n', what.find_first_not_of('\n')));
    throw bad_input("not this optimiser's state (" + what + ")", path, hint);
  }
}

} // namespace treerpo::train
