// Loading, defaults, overrides and error locations of the YAML run configuration.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "treerpo/config/config.h"
#include "treerpo/util/error.h"

namespace fs = std::filesystem;
using treerpo::Config;
using treerpo::load_config;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  fs::path dir = fs::temp_directory_path() / "treerpo_config_test";
  fs::create_directories(dir);
  fs::path path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

// The message of the treerpo::Error that loading throws, or "" when it loads.
std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_config(path, overrides);
  } catch (const treerpo::Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
    return e.what();
  }
  return "";
}

} // namespace

TEST(Config, DefaultsAreTheSeedRecipe) {
  Config c = load_config("");
  EXPECT_EQ(c.rollout.algorithm, "treerpo");
  EXPECT_EQ(c.rollout.max_depth, 7);
  EXPECT_EQ(c.rollout.min_segment_tokens, 150);
  EXPECT_DOUBLE_EQ(c.rollout.entropy_threshold, 1.0);
  EXPECT_EQ(c.rollout.entropy_top_k, 20);
  EXPECT_EQ(c.rollout.delimiters, (std::vector<std::string>{"\n", ".", "!", "?", ";", ":"}));
  EXPECT_EQ(c.rollout.coverage, "seed");
  EXPECT_EQ(c.rollout.coverage_min_chars, 150);
  EXPECT_EQ(c.rollout.coverage_min_tokens, 151);
  EXPECT_EQ(c.rollout.entropy_source, "raw");
  EXPECT_EQ(c.rollout.first_split, "forced");
  EXPECT_EQ(c.rollout.max_node_tokens, 1300);
  EXPECT_EQ(c.rollout.max_answer_tokens, 2600);
  EXPECT_DOUBLE_EQ(c.rollout.temperature, 0.6);
  EXPECT_DOUBLE_EQ(c.rollout.top_p, 0.85);
  EXPECT_EQ(c.rollout.top_k, 25);
  EXPECT_DOUBLE_EQ(c.rollout.repetition_penalty, 1.1);
  EXPECT_DOUBLE_EQ(c.train.clip_eps, 0.2);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-6);
  EXPECT_EQ(c.train.prompts_per_step, 1);
  EXPECT_EQ(c.train.loss_agg, "group-token-mean");
  EXPECT_TRUE(c.train.whiten_advantages); // read by treepo only
  EXPECT_DOUBLE_EQ(c.train.kl_coef, 0.0);
  EXPECT_EQ(c.model.dtype, "bfloat16");
  EXPECT_EQ(c.data.question_field, "question");
  EXPECT_EQ(c.data.answer_field, "answer");
  EXPECT_TRUE(c.explicitly_set.empty());
}

TEST(Config, FileValuesOfEveryTypeAreRead) {
  std::string path = write_temp("types.yaml", R"(model:
  path: /models/q
  dtype: float32
  device: cuda:1
data:
  shuffle: false
rollout:
  delimiters: ["\n", "."]
  max_depth: 3
  entropy_threshold: 0.5
train:
  lr: 2.5e-6
)");
  Config c = load_config(path);
  EXPECT_EQ(c.model.path, "/models/q");
  EXPECT_EQ(c.model.dtype, "float32");
  EXPECT_EQ(c.model.device, "cuda:1");
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.rollout.delimiters, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(c.rollout.max_depth, 3);
  EXPECT_DOUBLE_EQ(c.rollout.entropy_threshold, 0.5);
  EXPECT_DOUBLE_EQ(c.train.lr, 2.5e-6);
  EXPECT_EQ(c.explicitly_set.count("rollout.max_depth"), 1U);
  EXPECT_EQ(c.explicitly_set.count("rollout.top_k"), 0U);
}

TEST(Config, EmptyFileAndEmptySectionMeanDefaults) {
  EXPECT_EQ(load_config(write_temp("empty.yaml", "")).rollout.max_depth, 7);
  EXPECT_EQ(load_config(write_temp("empty_section.yaml", "train:\n")).train.seed, 42);
}

TEST(Config, OverridesWinOverTheFile) {
  std::string path = write_temp("over.yaml", "train:\n  lr: 1.0e-5\n");
  Config c = load_config(path, {"train.lr=3e-6", "rollout.delimiters=[\"\\n\"]",
                                "data.system_prompt=Think: then answer.", "data.shuffle=false"});
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-6);
  EXPECT_EQ(c.rollout.delimiters, (std::vector<std::string>{"\n"}));
  EXPECT_EQ(c.data.system_prompt, "Think: then answer."); // strings are taken verbatim
  EXPECT_FALSE(c.data.shuffle);
}

TEST(Config, WrongTypeInFileNamesFileLineAndKey) {
  std::string path =
      write_temp("wrong.yaml", "model:\n  dtype: float32\ntrain:\n  seed: 1\n  lr: abc\n");
  std::string msg = load_error(path);
  EXPECT_NE(msg.find(path + ":5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a number"), std::string::npos) << msg;
}

TEST(Config, WrongTypeInOverrideNamesTheSet) {
  std::string msg = load_error("", {"train.lr=abc"});
  EXPECT_NE(msg.find("--set train.lr=abc"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr: expected a number, got 'abc'"), std::string::npos) << msg;
  EXPECT_NE(load_error("", {"train.steps=1.5"}).find("expected an integer"), std::string::npos);
  EXPECT_NE(load_error("", {"data.shuffle=maybe"}).find("expected true or false"),
            std::string::npos);
  EXPECT_NE(load_error("", {"rollout.delimiters=."}).find("expected a list of strings"),
            std::string::npos);
  EXPECT_NE(load_error("", {"train.lr=.nan"}).find("expected a number"), std::string::npos);
}

TEST(Config, UnknownSectionAndKeyNameFileLine) {
  std::string a = write_temp("section.yaml", "train:\n  lr: 1.0e-6\ntrian:\n  lr: 1\n");
  std::string msg = load_error(a);
  EXPECT_NE(msg.find(a + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown section 'trian'"), std::string::npos) << msg;

  std::string b = write_temp("key.yaml", "train:\n  lr: 1.0e-6\n  lrr: 2\n");
  msg = load_error(b);
  EXPECT_NE(msg.find(b + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key train.lrr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lr"), std::string::npos) << msg;

  EXPECT_NE(load_error("", {"train.nope=1"}).find("unknown key train.nope"), std::string::npos);
  EXPECT_NE(load_error("", {"nope.lr=1"}).find("unknown section 'nope'"), std::string::npos);
  EXPECT_NE(load_error("", {"train.lr"}).find("expected section.key=value"), std::string::npos);
}

TEST(Config, MalformedFilesAreRejectedWithALocation) {
  EXPECT_NE(load_error("/nonexistent/treerpo.yaml").find("cannot read"), std::string::npos);
  std::string bad = write_temp("syntax.yaml", "train:\n  lr: [1, 2\n");
  EXPECT_NE(load_error(bad).find("invalid YAML"), std::string::npos);
  std::string list = write_temp("list.yaml", "- a\n- b\n");
  EXPECT_NE(load_error(list).find("expected a mapping of sections"), std::string::npos);
  std::string scalar_section = write_temp("scalar.yaml", "train: 3\n");
  EXPECT_NE(load_error(scalar_section).find("must be a mapping"), std::string::npos);
}

TEST(Config, EffectiveConfigLoadsBackToTheSameValues) {
  Config c = load_config("", {"train.lr=3.3e-7", "rollout.delimiters=[\"\\n\", \"::\"]",
                              "data.system_prompt=Say \"hi\": now", "model.device=cpu"});
  std::string path = write_temp("effective.yaml", treerpo::to_yaml(c));
  Config back = load_config(path);
  EXPECT_EQ(treerpo::to_yaml(back), treerpo::to_yaml(c));
  EXPECT_DOUBLE_EQ(back.train.lr, 3.3e-7);
  EXPECT_EQ(back.rollout.delimiters, c.rollout.delimiters);
  EXPECT_EQ(back.data.system_prompt, "Say \"hi\": now");
}

TEST(Config, EffectiveConfigLeavesOutKeysTheShapeDoesNotUse) {
  std::string grpo = treerpo::to_yaml(load_config("", {"rollout.algorithm=grpo"}));
  EXPECT_NE(grpo.find("samples"), std::string::npos);
  EXPECT_EQ(grpo.find("entropy_threshold"), std::string::npos);
  std::string tree = treerpo::to_yaml(load_config(""));
  EXPECT_EQ(tree.find("samples"), std::string::npos);
  EXPECT_NE(tree.find("entropy_threshold"), std::string::npos);
}

// What a checkpoint's config hash covers: the used keys whose values differ from the defaults, so
// a key at its default (one a later version adds, say) is not in it.
TEST(Config, ChangedSettingsListOnlyTheUsedKeysOffTheirDefaults) {
  EXPECT_EQ(treerpo::changed_settings(load_config("")), "");
  EXPECT_EQ(treerpo::changed_settings(load_config("", {"rollout.first_split=forced"})), "");
  EXPECT_EQ(treerpo::changed_settings(load_config("", {"train.lr=0.5"})), "train.lr: 0.5\n");
  // Derived keys count: an L_min of 40 derives a coverage length of 41.
  EXPECT_EQ(treerpo::changed_settings(load_config("", {"rollout.min_segment_tokens=40"})),
            "rollout.min_segment_tokens: 40\nrollout.coverage_min_tokens: 41\n");
  // GRPO's own keys at their defaults stay out; its preset's derived values do not.
  const std::string grpo = treerpo::changed_settings(load_config("", {"rollout.algorithm=grpo"}));
  EXPECT_EQ(grpo.rfind("rollout.algorithm: \"grpo\"\n", 0), 0u) << grpo;
  EXPECT_EQ(grpo.find("rollout.samples"), std::string::npos) << grpo;
  EXPECT_EQ(grpo.find("entropy"), std::string::npos) << grpo;
}

TEST(Config, ShippedConfigsAreValid) {
  for (const char* name : {"qwen1.5b.yaml", "demo.yaml", "demo-grpo.yaml"}) {
    std::string path = std::string(TREERPO_SOURCE_DIR) + "/configs/" + name;
    EXPECT_EQ(load_error(path), "") << name;
  }
  Config seed = load_config(std::string(TREERPO_SOURCE_DIR) + "/configs/qwen1.5b.yaml");
  EXPECT_EQ(seed.model.device, "cuda");
  EXPECT_DOUBLE_EQ(seed.train.lr, 1e-6);
}

// The CLI turns a bad value into one line naming the key, and exit code 2.
TEST(ConfigCli, BadOverridePrintsOneLineAndExitsTwo) {
  std::string out = write_temp("cli_out.txt", "");
  std::string cmd = std::string(TREERPO_CLI) + " --config " + TREERPO_SOURCE_DIR +
                    "/configs/qwen1.5b.yaml --set train.lr=abc > " + out + " 2>&1";
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("train.lr"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}
