// trees.jsonl schema and the HTML rendering, on a hand-built tree.
#include <gtest/gtest.h>

#include "treerpo/rollout/tree_html.h"
#include "treerpo/rollout/tree_json.h"

using namespace treerpo::rollout;

namespace {

// root -> {a (split at entropy 1.5) -> {a1 correct, a2 wrong}, b wrong}
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
  t.nodes[a].token_ids = {10, 11};
  t.nodes[a].text = "1+1=";
  t.nodes[a].split_entropy = 1.5f;
  t.nodes[b].token_ids = {12};
  t.nodes[b].text = "<3>";
  t.nodes[a1].token_ids = {13};
  t.nodes[a1].text = "2";
  t.nodes[a2].token_ids = {14};
  t.nodes[a2].text = "3";
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
  nlohmann::json j = tree_to_json(hand_tree());
  EXPECT_EQ(j["prompt"], "What is 1+1?");
  EXPECT_EQ(j["gold"], "#### 2");
  EXPECT_EQ(j["prompt_ids"], nlohmann::json({5, 6, 7}));
  ASSERT_EQ(j["nodes"].size(), 5U);
  const auto& root = j["nodes"][0];
  EXPECT_EQ(root["parent"], -1);
  EXPECT_EQ(root["created_by"], "root");
  EXPECT_TRUE(root["split_entropy"].is_null());
  EXPECT_FALSE(root.contains("correct")); // only leaves carry a verdict
  const auto& a = j["nodes"][1];
  EXPECT_EQ(a["created_by"], "forced");
  EXPECT_EQ(a["depth"], 1);
  EXPECT_EQ(a["token_ids"], nlohmann::json({10, 11}));
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
  EXPECT_DOUBLE_EQ(a1["reward"].get<double>(), 1.0);
  for (const char* key : {"id", "parent", "depth", "token_ids", "text", "created_by",
                          "split_entropy", "reward", "advantage", "leaf"}) {
    for (const auto& n : j["nodes"]) EXPECT_TRUE(n.contains(key)) << key;
  }
}

TEST(TreeHtml, IsSelfContainedAndEscapesText) {
  std::string html = tree_to_html(hand_tree());
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0U);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(html.find("1+1="), std::string::npos);
  EXPECT_NE(html.find("&lt;3&gt;"), std::string::npos); // node text "<3>" is escaped
  EXPECT_EQ(html.find("<3>"), std::string::npos);
  EXPECT_NE(html.find("1.5"), std::string::npos); // the split entropy is shown
}
