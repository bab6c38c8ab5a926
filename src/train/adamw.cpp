#include "treerpo/train/adamw.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <ATen/Context.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "treerpo/train/optimizer_memory.h"
#include "treerpo/util/error.h"
#include "treerpo/util/rng.h"

namespace treerpo::train {

namespace {

// float32 zeros shaped like `p`, or bfloat16 ones for the lean state.
torch::Tensor moment_like(const torch::Tensor& p, bool bf16_state) {
  return torch::zeros(p.sizes(),
                      p.options().dtype(bf16_state ? torch::kBFloat16 : torch::kFloat32));
}

// The step's view of one chunk of one parameter (all flat, the same length).
struct Chunk {
  torch::Tensor weight, grad, exp_avg, exp_avg_sq, compensation; // compensation may be undefined
};

struct StepScalars {
  double lr, beta1, beta2, eps, decay, bias1, bias2;
};

// adamw: float32 moments updated in place; the weight in place (float32) or through its Kahan
// buffer (bfloat16), as the whole-tensor update did: every operation is elementwise, so chunking
// changes no bit.
void update_float32_state(const Chunk& c, const StepScalars& k) {
  const torch::Tensor g = c.grad.to(torch::kFloat32);
  c.exp_avg.mul_(k.beta1).add_(g, 1.0 - k.beta1);
  c.exp_avg_sq.mul_(k.beta2).addcmul_(g, g, 1.0 - k.beta2);
  const torch::Tensor denom = c.exp_avg_sq.sqrt().div_(std::sqrt(k.bias2)).add_(k.eps);
  if (!c.compensation.defined()) {
    // float32: torch.optim.AdamW's own sequence of operations.
    c.weight.mul_(1.0 - k.lr * k.decay);
    c.weight.addcdiv_(c.exp_avg, denom, -k.lr / k.bias1);
    return;
  }
  // bfloat16: the exact float32 target is the stored weight plus what earlier rounding lost plus
  // this update; store its bf16 rounding and keep the new remainder.
  torch::Tensor target = c.weight.to(torch::kFloat32).mul_(1.0 - k.lr * k.decay);
  target.addcdiv_(c.exp_avg, denom, -k.lr / k.bias1).add_(c.compensation.to(torch::kFloat32));
  c.weight.copy_(target);
  c.compensation.copy_(target.sub_(c.weight.to(torch::kFloat32)));
}

// adamw-bf16: the moments are computed in float32 from their bf16 values and stored back with
// stochastic rounding; a bf16 weight likewise, a float32 weight in place.
void update_bf16_state(const Chunk& c, const StepScalars& k, at::Generator& generator) {
  torch::Tensor m, v;
  {
    const torch::Tensor g = c.grad.to(torch::kFloat32);
    m = c.exp_avg.to(torch::kFloat32).mul_(k.beta1).add_(g, 1.0 - k.beta1);
    v = c.exp_avg_sq.to(torch::kFloat32).mul_(k.beta2).addcmul_(g, g, 1.0 - k.beta2);
  }
  c.exp_avg.copy_(stochastic_round_to_bf16(m, generator));
  c.exp_avg_sq.copy_(stochastic_round_to_bf16(v, generator));
  const torch::Tensor denom = v.sqrt_().div_(std::sqrt(k.bias2)).add_(k.eps);
  if (c.weight.scalar_type() != torch::kBFloat16) {
    c.weight.mul_(1.0 - k.lr * k.decay);
    c.weight.addcdiv_(m, denom, -k.lr / k.bias1);
    return;
  }
  torch::Tensor target = c.weight.to(torch::kFloat32).mul_(1.0 - k.lr * k.decay);
  target.addcdiv_(m, denom, -k.lr / k.bias1);
  c.weight.copy_(stochastic_round_to_bf16(target, generator));
}

} // namespace

torch::Tensor stochastic_round_to_bf16(const torch::Tensor& x, at::Generator& generator) {
  // bf16 is float32's upper 16 bits: adding 16 random low bits and truncating them rounds the
  // magnitude up with probability (low bits) / 2^16. Exact values (low bits 0) never carry.
  // A non-finite x is never stored (non-finite steps are skipped before the optimiser).
  const torch::Tensor source = x.contiguous();
  torch::Tensor bits = torch::randint(0, int64_t{1} << 16, source.sizes(), generator,
                                      source.options().dtype(torch::kInt32));
  bits.add_(source.view(torch::kInt32)).bitwise_and_(static_cast<int64_t>(int32_t{-65536}));
  return bits.view(torch::kFloat32).to(torch::kBFloat16);
}

AdamW::AdamW(std::vector<torch::Tensor> params, const AdamWOptions& options)
    : params_(std::move(params)), options_(options) {
  for (const torch::Tensor& p : params_) {
    exp_avg_.push_back(moment_like(p, options_.bf16_state));
    exp_avg_sq_.push_back(moment_like(p, options_.bf16_state));
    const bool kahan = !options_.bf16_state && p.scalar_type() == torch::kBFloat16;
    compensation_.push_back(kahan ? torch::zeros_like(p) : torch::Tensor());
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  steps_ += 1;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const StepScalars k{lr,
                      b1,
                      b2,
                      options_.eps,
                      options_.weight_decay,
                      1.0 - std::pow(b1, static_cast<double>(steps_)),
                      1.0 - std::pow(b2, static_cast<double>(steps_))};
  auto flat = [](const torch::Tensor& t) { return t.defined() ? t.view({-1}) : t; };
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    if (!p.is_contiguous())
      throw runtime_failure("parameter " + std::to_string(i) + " is not contiguous", "AdamW::step");
    const Chunk all{flat(p), p.grad().contiguous().view({-1}), flat(exp_avg_[i]),
                    flat(exp_avg_sq_[i]), flat(compensation_[i])};
    std::optional<at::Generator> generator;
    if (options_.bf16_state) {
      generator = at::globalContext().defaultGenerator(p.device()).clone();
      generator->set_current_seed(
          derive_seed(derive_seed(options_.seed, static_cast<uint64_t>(steps_)), i));
    }
    const int64_t n = p.numel();
    for (int64_t start = 0; start < n; start += kStepChunkElements) {
      const int64_t len = std::min(kStepChunkElements, n - start);
      auto part = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, start, len) : t; };
      const Chunk c{part(all.weight), part(all.grad), part(all.exp_avg), part(all.exp_avg_sq),
                    part(all.compensation)};
      if (generator) {
        update_bf16_state(c, k, *generator);
      } else {
        update_float32_state(c, k);
      }
    }
  }
}

void AdamW::release_grads() {
  for (torch::Tensor& p : params_) p.mutable_grad() = torch::Tensor();
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
    archive.load_from(path, torch::Device(torch::kCPU));
    torch::Tensor steps;
    archive.read("steps", steps);
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string n = std::to_string(i);
      auto read_like = [&](const std::string& key, torch::Tensor& into) {
        torch::Tensor t;
        archive.read(key, t);
        if (!t.sizes().equals(into.sizes()) || t.scalar_type() != into.scalar_type())
          throw bad_input(key + " does not match the model's parameter " + n + " (" +
                              std::string(c10::toString(t.scalar_type())) + " vs this run's " +
                              std::string(c10::toString(into.scalar_type())) +
                              "; train.optimizer must be the one that wrote it)",
                          path, hint);
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
