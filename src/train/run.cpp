#include "treerpo/train/run.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/Version.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/nn/utils/clip_grad.h>

#include "treerpo/dist/gradients.h"
#include "treerpo/train/memory_plan.h"
#include "treerpo/util/checksums.h"
#include "treerpo/util/device_memory.h"
#include "treerpo/util/error.h"

namespace fs = std::filesystem;

namespace treerpo::train {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int /*signal*/) {
  g_stop.store(true);
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) throw runtime_failure("cannot write file", tmp.string(), "check free disk space");
  }
  fs::rename(tmp, path);
}

// FNV-1a over every parameter's bytes, eight at a time: equal digests, bitwise-equal weights.
std::string weights_digest(const std::vector<torch::Tensor>& params) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : params) {
    torch::Tensor host = p.detach().cpu().contiguous();
    const auto* bytes = static_cast<const unsigned char*>(host.data_ptr());
    const size_t n = static_cast<size_t>(host.numel()) * host.element_size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, bytes + i, 8);
      h = (h ^ word) * 1099511628211ULL;
    }
    for (; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

// The first line where `a` and `b` differ, as "`<a's line>` vs `<b's line>`".
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  while (true) {
    bool ga = static_cast<bool>(std::getline(sa, la)), gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return "";
    if (!ga) la.clear();
    if (!gb) lb.clear();
    if (la != lb) return fmt::format("`{}` vs rank 0's `{}`", la, lb);
  }
}

// Logs the memory plan of a TreeRPO run (memory_plan.h, against the product's 24 GiB card) in two
// lines and writes the whole plan to RUN_DIR/memory_plan.json, as `treerpo-train plan` prints it.
void log_memory_plan(const Config& config, const model::Qwen2Config& shape, const fs::path& dir) {
  const std::string text = memory_plan_json(config, shape, PlanOptions{});
  write_text_atomically(dir / "memory_plan.json", text + "\n");
  const nlohmann::json plan = nlohmann::json::parse(text);
  auto gib = [](const nlohmann::json& bytes) {
    return fmt::format("{:.2f}", bytes.get<double>() / double(int64_t{1} << 30));
  };
  std::string components, phases;
  for (const auto& [name, bytes] : plan["components"].items())
    components += fmt::format("{}{} {}", components.empty() ? "" : ", ", name, gib(bytes));
  for (const auto& [name, bytes] : plan["phases"].items())
    phases += fmt::format("{}{} {}", phases.empty() ? "" : ", ", name, gib(bytes));
  spdlog::info("memory plan (GiB; a tree of {} tokens assumed): {}",
               plan["assumptions"]["tree_tokens"].get<int64_t>(), components);
  spdlog::info("memory plan per phase (GiB): {}; peak {} in {}, {} 24 GiB (memory_plan.json)",
               phases, gib(plan["peak_bytes"]), plan["peak_phase"].get<std::string>(),
               plan["fits"].get<bool>() ? "fits" : "does not fit");
}

// The optimiser state of checkpoint `dir`: optimizer.state, or optimizer.pt from a checkpoint an
// earlier version wrote. A checkpoint with neither is refused: fresh moments would be a different
// run from the one that stopped.
void load_optimizer_state(AdamW& optimizer, const std::string& dir) {
  const fs::path state = fs::path(dir) / kOptimizerStateFile;
  const fs::path legacy = fs::path(dir) / kLegacyOptimizerStateFile;
  if (fs::exists(state)) {
    optimizer.load(state.string());
  } else if (fs::exists(legacy)) {
    spdlog::info("reading the optimiser state from {} (the format of earlier versions)",
                 legacy.string());
    optimizer.load_archive(legacy.string());
  } else {
    throw bad_input(std::string("the checkpoint has no ") + kOptimizerStateFile, dir,
                    "resume from a checkpoint treerpo wrote, or start a new checkpoint.dir");
  }
}

// The instruction set of ATen's CPU kernels, which a CPU run's bits depend on; "" on CUDA.
std::string cpu_capability(const torch::Device& device) {
  return device.is_cpu() ? at::get_cpu_capability() : std::string();
}

} // namespace

torch::Dtype parse_dtype(const std::string& dtype) {
  return dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
}

torch::Device parse_device(const std::string& device) {
  torch::Device d(device);
  if (d.is_cuda() && !torch::cuda::is_available()) {
    throw bad_input(
        "model.device is " + device + " but no CUDA device is usable here", "model.device",
        "set model.device=cpu (and model.dtype=float32) or use a CUDA build of LibTorch");
  }
  return d;
}

TrainingRun::TrainingRun(const Config& config, std::string kind, const RunOptions& options)
    : config_(config), kind_(std::move(kind)), device_(parse_device(config.model.device)),
      dtype_(parse_dtype(config.model.dtype)),
      checkpoints_(config.checkpoint.dir, config.checkpoint.keep) {
  const dist::Launch launch = dist::launch_from_env();
  device_ = dist::rank_device(config.model.device, launch);
  // log.level applies unless --verbose or --quiet already chose a level; ranks other than 0 log
  // warnings and errors only (rank 0 speaks for the job).
  if (spdlog::get_level() == spdlog::level::info) {
    spdlog::set_level(spdlog::level::from_str(config_.log.level));
    if (launch.rank > 0) spdlog::set_level(spdlog::level::warn);
  }
  if (launch.joined) {
    world_ = dist::World(launch, device_, std::chrono::seconds(config_.distributed.timeout_s));
    spdlog::info("data-parallel job of {} ranks ({} on {})", world_.size(),
                 device_.is_cuda() ? "NCCL" : "Gloo", device_.str());
  }
  fs::create_directories(run_dir());
  std::string hash = config_hash(config_);
  std::optional<std::string> resume =
      options.resume.empty() ? checkpoints_.latest() : std::optional<std::string>(options.resume);
  std::string weights = config_.model.path;
  if (resume) {
    if (!options.resume.empty()) require_intact(*resume);
    TrainerState state = read_trainer_state(*resume);
    if (state.kind != kind_) {
      throw bad_input(fmt::format("this run directory holds a {} run, not {}", state.kind, kind_),
                      run_dir(), "choose another checkpoint.dir");
    }
    if (state.config_hash != hash && !options.force) {
      throw bad_input(
          "the configuration changed since this run's checkpoints (results would differ)", *resume,
          "re-run with the same config, choose a new checkpoint.dir, or pass --force");
    }
    weights = *resume;
    start_step_ = state.step;
    sampled_tokens_ = state.sampled_tokens;
    spdlog::info("resuming {} from {} (step {})", kind_, *resume, start_step_);
    if (device_.is_cpu() && !state.cpu_capability.empty() &&
        state.cpu_capability != cpu_capability(device_)) {
      // Each instruction set rounds its vectorised sums its own way: on the demo, SFT losses part
      // at the 7th digit within a few steps and end at other accuracies (README).
      spdlog::warn("{}'s steps ran with ATen's {} CPU kernels, these run with {}: the run goes on, "
                   "but not bitwise as it would have on the first machine",
                   *resume, state.cpu_capability, cpu_capability(device_));
    }
  } else if (weights.empty()) {
    throw bad_input("model.path is not set", "model.path", "set it to a Hugging Face model folder");
  }
  if (config_.model.memory_gb > 0) cap_device_memory(device_, config_.model.memory_gb);
  model_ = std::make_unique<model::Qwen2>(model::Qwen2::load(weights, dtype_, device_));
  model_->set_gradient_checkpointing(config_.train.gradient_checkpointing);
  std::string tok = config_.model.tokenizer.empty() ? config_.model.path : config_.model.tokenizer;
  tokenizer_ = tokenizer::Tokenizer::load(tok.empty() ? weights : tok);

  params_ = model_->parameters();
  for (auto& p : params_) p.requires_grad_(true);
  const TrainConfig& t = config_.train;
  optimizer_ = std::make_unique<AdamW>(
      params_, AdamWOptions{t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay,
                            t.optimizer == "adamw-bf16", static_cast<uint64_t>(t.seed)});
  if (resume) load_optimizer_state(*optimizer_, *resume);
  check_ranks_agree(resume.value_or(""));
  if (world_.main()) {
    write_text_atomically(fs::path(run_dir()) / "config.yaml", to_yaml(config_));
    if (kind_ == "rl") log_memory_plan(config_, model_->config(), run_dir());
  }
  g_stop.store(false);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

TrainingRun::~TrainingRun() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

bool TrainingRun::stop_requested() {
  return g_stop.load();
}

bool TrainingRun::stop_agreed() {
  return world_.any(stop_requested(), "the stop request");
}

void TrainingRun::check_ranks_agree(const std::string& resume) {
  if (!world_.joined()) return;
  // Rank 0's view: config, the checkpoint resumed, and the weights loaded.
  const std::string yaml = to_yaml(config_);
  const std::vector<std::string> configs = world_.gather(yaml, "the configuration");
  const std::vector<std::string> starts =
      world_.gather(resume + "\n" + weights_digest(params_), "the starting weights");
  for (int r = 1; r < world_.size(); ++r) {
    std::string diff = first_difference(configs[static_cast<size_t>(r)], configs[0]);
    if (!diff.empty()) {
      throw bad_input(fmt::format("rank {}'s configuration differs from rank 0's: {}", r, diff),
                      "WORLD_SIZE", "start every rank with the same config and --set values");
    }
    if (starts[static_cast<size_t>(r)] != starts[0]) {
      throw bad_input(fmt::format("rank {} loaded other weights than rank 0 ({} vs {})", r,
                                  starts[static_cast<size_t>(r)], starts[0]),
                      "model.path", "give every rank the same model files and run directory");
    }
  }
}

std::optional<double> TrainingRun::apply_gradients(double lr, double loss) {
  const auto started = std::chrono::steady_clock::now();
  communication_bytes_ += dist::sum_gradients(world_, params_);
  communication_s_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double max_norm = config_.train.max_grad_norm;
  // With clipping off, the norm is still measured (for metrics and the NaN check).
  double norm = torch::nn::utils::clip_grad_norm_(
      params_, max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity());
  bool finite = std::isfinite(loss) && std::isfinite(norm);
  if (finite) {
    optimizer_->step(lr);
    bad_steps_ = 0;
  } else {
    ++bad_steps_;
    spdlog::warn("non-finite loss ({}) or gradient norm ({}): update skipped ({} in a row)", loss,
                 norm, bad_steps_);
    if (bad_steps_ >= config_.train.max_bad_steps) {
      throw runtime_failure(
          fmt::format("{} steps in a row had a non-finite loss or gradient", bad_steps_), run_dir(),
          "lower train.lr or check the data; the last checkpoint is intact");
    }
  }
  optimizer_->release_grads();
  if (!finite) return std::nullopt;
  return norm;
}

std::string TrainingRun::checkpoint(int64_t step) {
  if (world_.joined()) {
    const std::vector<std::string> digests =
        world_.gather(weights_digest(params_), "the weights before a checkpoint");
    for (int r = 1; r < world_.size(); ++r) {
      if (digests[static_cast<size_t>(r)] != digests[0]) {
        throw runtime_failure(
            fmt::format("rank {}'s weights differ from rank 0's at step {}", r, step), run_dir(),
            "report this as a bug; resume from the last checkpoint");
      }
    }
    if (!world_.main()) return checkpoints_.path(step);
  }
  TrainerState state{kind_,
                     step,
                     config_.train.seed,
                     config_hash(config_),
                     sampled_tokens_,
                     cpu_capability(device_)};
  std::string dir = checkpoints_.save(step, [&](const std::string& tmp) {
    model_->save(tmp);
    optimizer_->save((fs::path(tmp) / kOptimizerStateFile).string());
    write_trainer_state(tmp, state);
  });
  spdlog::info("checkpoint {}", dir);
  return dir;
}

} // namespace treerpo::train
