// trees.jsonl records (tree_json.h) on a hand-built tree, decoded by a byte-level tokenizer whose
// ids are the byte values (ids 0..255 == bytes), so every expected piece is read off the bytes.
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include "treerpo/rollout/tree_json.h"
#include "treerpo/tokenizer/byte_level_writer.h"

namespace fs = std::filesystem;
using namespace treerpo;
using namespace treerpo::rollout;

namespace {

const tokenizer::Tokenizer& bytes_tokenizer() {
  static const auto tok = [] {
    fs::path dir = fs::temp_directory_path() / ("treerpo_output_test_" + std::to_string(getpid()));
    tokenizer::write_byte_level_tokenizer(dir.string(), {}, {});
    return tokenizer::Tokenizer::load(dir.string());
  }();
  return *tok;
}

std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

// root -> {a "1+1=" (split at entropy 1.5) -> {a1 "\boxed{2}" correct, a2 "3" wrong}, b "<3>"
// wrong}
Tree hand_tree() {
  Tree t;
  t.prompt = "What is 1+1?";
  t.gold = "#### 2";
  t.prompt_ids = {5, 6, 7};
  t.nodes.push_back(Node{});
  int32_t a = t.add_child(0, NodeOrigin::Forced);
  int32_t b = t.add_child(0, NodeOrigin::Forced);
  int32_t a1 = t.add_child(a, NodeOrigin::Entropy);
  int32_t a2 = t.add_child(a, NodeOrigin::Entropy);
  for (auto [node, text] : {std::pair{a, "1+1="}, {b, "<3>"}, {a1, "\\boxed{2}"}, {a2, "3"}}) {
    t.nodes[node].text = text;
    t.nodes[node].token_ids = bytes_of(text);
    t.nodes[node].logprobs.assign(t.nodes[node].token_ids.size(), -0.5f);
  }
  t.nodes[a].split_entropy = 1.5f;
  t.nodes[a1].logprobs[0] = -0.123456f;
  t.nodes[a2].logprobs[0] = -2.0f;
  for (int32_t leaf : {b, a1, a2}) t.nodes[leaf].leaf = true;
  t.nodes[a1].correct = true;
  t.nodes[a1].reward = 1.0;
  t.nodes[a2].correct = false;
  t.nodes[b].correct = false;
  t.nodes[a].reward = 0.5;
  t.nodes[a].advantage = 0.25; // 0.5 - mean(0.5, 0)
  return t;
}

} // namespace

TEST(TreeJson, FollowsTheDocumentedSchema) {
  nlohmann::json j = tree_to_json(hand_tree(), bytes_tokenizer());
  EXPECT_EQ(j["prompt"], "What is 1+1?");
  EXPECT_EQ(j["gold"], "#### 2");
  EXPECT_EQ(j["gold_answer"], "2"); // the number after "####"
  EXPECT_EQ(j["prompt_ids"], nlohmann::json({5, 6, 7}));
  ASSERT_EQ(j["nodes"].size(), 5U);
  const auto& root = j["nodes"][0];
  EXPECT_EQ(root["parent"], -1);
  EXPECT_EQ(root["created_by"], "root");
  EXPECT_EQ(root["children"], nlohmann::json({1, 2}));
  EXPECT_TRUE(root["split_entropy"].is_null());
  EXPECT_FALSE(root.contains("correct")); // only leaves carry a verdict and an answer
  EXPECT_FALSE(root.contains("answer"));
  const auto& a = j["nodes"][1];
  EXPECT_EQ(a["created_by"], "forced");
  EXPECT_EQ(a["depth"], 1);
  EXPECT_EQ(a["token_ids"], nlohmann::json({'1', '+', '1', '='}));
  EXPECT_EQ(a["pieces"], nlohmann::json({"1", "+", "1", "="}));
  EXPECT_EQ(a["logprobs"], nlohmann::json({-0.5, -0.5, -0.5, -0.5}));
  EXPECT_EQ(a["text"], "1+1=");
  EXPECT_DOUBLE_EQ(a["split_entropy"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(a["advantage"].get<double>(), 0.25);
  EXPECT_FALSE(a["leaf"].get<bool>());
  const auto& a1 = j["nodes"][3];
  EXPECT_EQ(a1["created_by"], "entropy");
  EXPECT_EQ(a1["parent"], 1);
  EXPECT_EQ(a1["depth"], 2);
  EXPECT_TRUE(a1["leaf"].get<bool>());
  EXPECT_EQ(a1["correct"], true);
  EXPECT_EQ(a1["samples"], 1);
  EXPECT_DOUBLE_EQ(a1["reward"].get<double>(), 1.0);
  for (const char* key :
       {"id", "parent", "depth", "created_by", "token_ids", "pieces", "logprobs", "text",
        "children", "split_entropy", "branch_tokens", "reward", "advantage", "leaf"}) {
    for (const auto& n : j["nodes"]) EXPECT_TRUE(n.contains(key)) << key;
  }
}

TEST(TreeJson, LogprobsAreRoundedToFourDecimals) {
  nlohmann::json j = tree_to_json(hand_tree(), bytes_tokenizer());
  EXPECT_DOUBLE_EQ(j["nodes"][3]["logprobs"][0].get<double>(), -0.1235);
}

TEST(TreeJson, SplitPointListsEachChildsFirstToken) {
  nlohmann::json j = tree_to_json(hand_tree(), bytes_tokenizer());
  // a splits into a1 "\boxed{2}" and a2 "3": the branch tokens are '\' and '3'.
  nlohmann::json expected = nlohmann::json::array();
  expected.push_back({{"node", 3}, {"token_id", '\\'}, {"piece", "\\"}, {"logprob", -0.1235}});
  expected.push_back({{"node", 4}, {"token_id", '3'}, {"piece", "3"}, {"logprob", -2.0}});
  EXPECT_EQ(j["nodes"][1]["branch_tokens"], expected);
  EXPECT_EQ(j["nodes"][3]["branch_tokens"], nlohmann::json::array()); // a leaf never split
}

TEST(TreeJson, LeafCarriesTheAnswerTheCheckerExtracts) {
  nlohmann::json j = tree_to_json(hand_tree(), bytes_tokenizer());
  EXPECT_EQ(j["nodes"][3]["answer"], "2");        // "1+1=\boxed{2}"
  EXPECT_TRUE(j["nodes"][4]["answer"].is_null()); // "1+1=3": no \boxed{}
  EXPECT_TRUE(j["nodes"][2]["answer"].is_null()); // "<3>"
}

TEST(TreeJson, PartialCharacterPieceIsEmptyAndTheCompletingTokenCarriesIt) {
  // "é" is the bytes C3 A9; the parent's span ends after C3, the child's starts with A9.
  Tree t;
  t.gold = "é";
  t.nodes.push_back(Node{});
  int32_t a = t.add_child(0, NodeOrigin::Forced);
  int32_t a1 = t.add_child(a, NodeOrigin::Entropy);
  t.nodes[a].token_ids = {'x', 0xC3};
  t.nodes[a].logprobs = {-1.0f, -1.0f};
  t.nodes[a].text = "x";
  t.nodes[a1].token_ids = {0xA9, 0xC3, 0xA9};
  t.nodes[a1].logprobs = {-1.0f, -1.0f, -1.0f};
  t.nodes[a1].text = "éé";
  t.nodes[a1].leaf = true;
  nlohmann::json j = tree_to_json(t, bytes_tokenizer());
  EXPECT_EQ(j["nodes"][1]["pieces"], nlohmann::json({"x", ""}));
  EXPECT_EQ(j["nodes"][2]["pieces"], nlohmann::json({"é", "", "é"}));
  EXPECT_EQ(j["nodes"][1]["branch_tokens"][0]["piece"], "é");
}
