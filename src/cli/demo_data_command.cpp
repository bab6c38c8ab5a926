#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "treerpo/train/demo.h"

namespace treerpo::cli {

void add_demo_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo-data",
      "Write the demo's synthetic arithmetic data, tokenizer and random tiny Qwen2 into DIR");
  auto opts = std::make_shared<train::DemoOptions>();
  auto dir = std::make_shared<std::string>();
  cmd->add_option("dir", *dir, "Output folder (gets data/ and model/)")->required();
  cmd->add_option("--train", opts->train_problems, "Training problems")->capture_default_str();
  cmd->add_option("--test", opts->test_problems, "Held-out problems")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Seed of the data and the initial weights")
      ->capture_default_str();
  auto* hidden =
      cmd->add_option("--hidden", opts->hidden_size, "Model width")->capture_default_str();
  auto* layers = cmd->add_option("--layers", opts->layers, "Decoder layers")->capture_default_str();
  cmd->add_option("--shape", opts->shape,
                  "A built-in shape with random bf16 weights instead of the tiny model: "
                  "qwen2.5-math-1.5b")
      ->check(CLI::IsMember({"qwen2.5-math-1.5b"}))
      ->excludes(hidden)
      ->excludes(layers);
  auto slip = std::make_shared<std::string>("last");
  cmd->add_option("--slip-step", *slip,
                  "Which step of the SFT split's careless solutions slips by one, the later "
                  "steps following from it: last (the demo's task), any (drawn uniformly), or "
                  "finds (every step the question words \"finds N more\")")
      ->check(CLI::IsMember({"last", "any", "finds"}))
      ->capture_default_str();
  cmd->add_option("--slip-rate", opts->sft_slip_rate,
                  "Share of the SFT split's solutions that slip (with finds: of those with such a "
                  "step)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->callback([opts, dir, slip] {
    using Slip = train::DemoOptions::SlipStep;
    opts->sft_slip_step = *slip == "any" ? Slip::Any : *slip == "finds" ? Slip::Finds : Slip::Last;
    train::write_demo_workspace(*dir, *opts);
    std::printf("%s\n", dir->c_str());
  });
}

} // namespace treerpo::cli
