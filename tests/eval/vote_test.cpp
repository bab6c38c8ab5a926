// maj@k voting by construction: hand-made sample answers, expected winners worked out by hand.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "treerpo/eval/vote.h"

using treerpo::eval::majority_vote;
using Answers = std::vector<std::optional<std::string>>;

TEST(MajorityVote, EquivalentAnswersPoolTheirVotes) {
  // 0.5, \frac{1}{2} and 1/2 are one answer (3 votes) against 3 twice.
  const auto v = majority_vote({"3", "0.5", "\\frac{1}{2}", "3", "1/2"}, 0);
  ASSERT_TRUE(v.winner.has_value());
  EXPECT_EQ(*v.winner, 1U); // the cluster's first sample stands for it
  EXPECT_EQ(v.votes, 3);
  EXPECT_EQ(v.clusters, 2);
  EXPECT_FALSE(v.tie);
}

TEST(MajorityVote, LargerClusterBeatsEarlierOne) {
  const auto v = majority_vote({"4", "9", "9.0"}, 0);
  ASSERT_TRUE(v.winner.has_value());
  EXPECT_EQ(*v.winner, 1U);
  EXPECT_EQ(v.votes, 2);
  EXPECT_EQ(v.clusters, 2);
}

TEST(MajorityVote, SamplesWithoutBoxedAnswerCastNoVote) {
  // Two unanswered samples do not outvote the one answered sample.
  const auto v = majority_vote({std::nullopt, std::nullopt, "7"}, 0);
  ASSERT_TRUE(v.winner.has_value());
  EXPECT_EQ(*v.winner, 2U);
  EXPECT_EQ(v.votes, 1);
  EXPECT_EQ(v.clusters, 1);
}

TEST(MajorityVote, NoAnswerAtAllMeansNoWinner) {
  const auto v = majority_vote({std::nullopt, std::nullopt, std::nullopt}, 0);
  EXPECT_FALSE(v.winner.has_value());
  EXPECT_EQ(v.votes, 0);
  EXPECT_EQ(v.clusters, 0);
  EXPECT_FALSE(majority_vote({}, 0).winner.has_value());
}

TEST(MajorityVote, TieIsBrokenBySeededDraw) {
  const Answers answers = {"2", "5", "2.00", "5", "11"};
  std::set<size_t> winners;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const auto v = majority_vote(answers, seed);
    ASSERT_TRUE(v.winner.has_value());
    EXPECT_TRUE(v.tie);
    EXPECT_EQ(v.votes, 2);
    EXPECT_EQ(v.clusters, 3);
    EXPECT_EQ(*majority_vote(answers, seed).winner, *v.winner) << "seed " << seed;
    winners.insert(*v.winner);
  }
  // Only the two tied clusters (first samples 0 and 1) can win, and both do for some seed.
  EXPECT_EQ(winners, (std::set<size_t>{0, 1}));
}
