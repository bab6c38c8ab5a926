// The optimiser state as treerpo wrote it before optimizer.state: a LibTorch archive (a
// TorchScript module zip, read by LibTorch's unpickler and TorchScript compiler), optimizer.pt.
// Read only so such checkpoints still resume; nothing writes it. That reader is LibTorch's and
// not robust to arbitrary bytes (fuzzing found inputs that allocate gigabytes and run for
// minutes), so resume reaches it only after the checkpoint's SHA256SUMS matched (or in a folder
// without SHA256SUMS, which loads unchecked by the user's choice): in practice only files treerpo
// wrote.
#include <torch/serialize.h>
#include <torch/torch.h>

#include "treerpo/train/adamw.h"
#include "treerpo/util/error.h"

namespace treerpo::train {

void AdamW::load_archive(const std::string& path) {
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
