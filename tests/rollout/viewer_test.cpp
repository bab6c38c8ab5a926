// The viewer's files (viewer.h): step-N.jsonl, step-N.js and index.html in a run's trees/ folder.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "treerpo/rollout/viewer.h"
#include "treerpo/tokenizer/byte_level_writer.h"

namespace fs = std::filesystem;
using namespace treerpo;
using namespace treerpo::rollout;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct ViewerDir : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("treerpo_viewer_test_" + std::to_string(getpid()));
  std::unique_ptr<tokenizer::Tokenizer> tok;
  void SetUp() override {
    tokenizer::write_byte_level_tokenizer((dir / "tok").string(), {}, {});
    tok = tokenizer::Tokenizer::load((dir / "tok").string());
  }
  void TearDown() override { fs::remove_all(dir); }
  // A root with one leaf child "7".
  static Tree one_leaf_tree(const std::string& prompt) {
    Tree t;
    t.prompt = prompt;
    t.gold = "7";
    t.nodes.push_back(Node{});
    int32_t a = t.add_child(0, NodeOrigin::Forced);
    t.nodes[a].token_ids = {'7'};
    t.nodes[a].logprobs = {-0.25f};
    t.nodes[a].text = "7";
    t.nodes[a].leaf = true;
    return t;
  }
};

} // namespace

TEST_F(ViewerDir, StepScriptHandsTheJsonlLinesToThePage) {
  const fs::path trees = dir / "trees";
  write_logged_step(trees, 3, {one_leaf_tree("p<1>"), one_leaf_tree("p2")}, *tok);
  std::istringstream jsonl(read(trees / "step-3.jsonl"));
  std::string first, second;
  std::getline(jsonl, first);
  std::getline(jsonl, second);
  EXPECT_EQ(nlohmann::json::parse(first)["prompt"], "p<1>");
  EXPECT_EQ(read(trees / "step-3.js"), "treerpoSteps[3] = [\n" + first + ",\n" + second + "\n];\n");
}

TEST_F(ViewerDir, IndexListsEveryLoggedStepInNumericOrderAndLoadsNothingFromTheNetwork) {
  const fs::path trees = dir / "trees";
  for (int64_t step : {10, 9, 100}) write_logged_step(trees, step, {one_leaf_tree("p")}, *tok);
  EXPECT_EQ(logged_steps(trees), (std::vector<int64_t>{9, 10, 100}));
  const std::string page = read(trees / "index.html");
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0U);
  EXPECT_NE(page.find(R"([{"script":"step-9.js","step":9},{"script":"step-10.js","step":10},)"
                      R"({"script":"step-100.js","step":100}])"),
            std::string::npos);
  for (const char* remote :
       {"src=\"http", "href=\"http", "url(", "@import", "<script src", "fetch(", "XMLHttpRequest"})
    EXPECT_EQ(page.find(remote), std::string::npos) << remote;
}

TEST_F(ViewerDir, NoLoggedStepsIsAnEmptyList) {
  EXPECT_TRUE(logged_steps(dir / "trees").empty()); // the folder does not exist
}
