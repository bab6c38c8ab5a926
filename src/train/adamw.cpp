#include "treerpo/train/adamw.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <ATen/Context.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "treerpo/model/safetensors.h"
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

namespace {

const char* optimizer_name(const AdamWOptions& options) {
  return options.bf16_state ? "adamw-bf16" : "adamw";
}

const std::string kStateHint = "resume from a checkpoint this version wrote for the same model "
                               "and model.dtype, or start a new checkpoint.dir";

} // namespace

void AdamW::save(const std::string& path) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string n = std::to_string(i);
    tensors.emplace_back("exp_avg." + n, exp_avg_[i]);
    tensors.emplace_back("exp_avg_sq." + n, exp_avg_sq_[i]);
    if (compensation_[i].defined()) tensors.emplace_back("compensation." + n, compensation_[i]);
  }
  model::write_safetensors(
      path, tensors, {{"optimizer", optimizer_name(options_)}, {"steps", std::to_string(steps_)}});
}

void AdamW::load(const std::string& path) {
  const model::SafetensorsFile file = model::SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  const auto written_by = meta.find("optimizer");
  if (written_by == meta.end()) throw bad_input("no optimizer in its metadata", path, kStateHint);
  if (written_by->second != "adamw" && written_by->second != "adamw-bf16") {
    // Quoted and cut: the value is the file's bytes, and the message stays one short line.
    throw bad_input("optimizer " + nlohmann::json(written_by->second.substr(0, 40)).dump() +
                        " in its metadata is not one treerpo writes",
                    path, kStateHint);
  }
  if (written_by->second != optimizer_name(options_)) {
    throw bad_input("written by train.optimizer " + written_by->second + ", this run's is " +
                        optimizer_name(options_),
                    path, "resume with the train.optimizer that wrote it");
  }
  // A step count is one non-negative integer; anything else would skew bias correction.
  const auto steps = meta.find("steps");
  if (steps == meta.end() || steps->second.empty() || steps->second.size() > 18 ||
      steps->second.find_first_not_of("0123456789") != std::string::npos) {
    throw bad_input("steps in its metadata is not a non-negative integer", path, kStateHint);
  }
  // Every tensor is checked before any is read: a refused file leaves the state untouched.
  std::vector<std::pair<std::string, torch::Tensor*>> wanted;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string n = std::to_string(i);
    wanted.emplace_back("exp_avg." + n, &exp_avg_[i]);
    wanted.emplace_back("exp_avg_sq." + n, &exp_avg_sq_[i]);
    if (compensation_[i].defined()) wanted.emplace_back("compensation." + n, &compensation_[i]);
  }
  for (const auto& [key, into] : wanted) {
    const std::string parameter = key.substr(key.rfind('.') + 1);
    if (!file.contains(key)) {
      throw bad_input("no tensor " + key + " for the model's parameter " + parameter, path,
                      kStateHint);
    }
    if (file.shape(key) != into->sizes().vec() || file.dtype(key) != into->scalar_type()) {
      throw bad_input(key + " does not match the model's parameter " + parameter + " (" +
                          std::string(c10::toString(file.dtype(key))) + " vs this run's " +
                          std::string(c10::toString(into->scalar_type())) + ")",
                      path, kStateHint);
    }
  }
  if (file.names().size() != wanted.size()) {
    throw bad_input(std::to_string(file.names().size()) + " tensors where this model's state has " +
                        std::to_string(wanted.size()),
                    path, kStateHint);
  }
  // One tensor at a time through the host: never a second copy of the state on the device.
  for (const auto& [key, into] : wanted) into->copy_(file.tensor(key));
  steps_ = std::stoll(steps->second);
}

} // namespace treerpo::train
