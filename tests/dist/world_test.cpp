// The world of ranks: torchrun's variables, the shares, and the collectives between real processes
// (forked here, joined over a TCPStore on 127.0.0.1 with Gloo).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../common/loopback_port.h"
#include "treerpo/dist/gradients.h"
#include "treerpo/dist/world.h"
#include "treerpo/util/error.h"

namespace {

using treerpo::dist::Launch;
using treerpo::dist::share_of;
using treerpo::dist::World;
using treerpo::testing::free_port;
using treerpo::testing::LoopbackSocket;

// Runs body(world) in `ranks` forked processes; returns each rank's exit code (0: body returned
// true). A rank whose body throws prints the message and exits 3.
std::vector<int> in_ranks(int ranks, const std::function<bool(World&)>& body) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int code = 1;
      try {
        Launch l{true, r, ranks, r, "127.0.0.1", port};
        World world(l, torch::kCPU, std::chrono::seconds(60));
        code = body(world) ? 0 : 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        code = 3;
      }
      std::_Exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status));
  }
  return codes;
}

TEST(Share, ContiguousAndTheFirstRanksTakeTheRemainder) {
  // 7 prompts over 3 ranks: 3, 2, 2.
  EXPECT_EQ(share_of(7, 0, 3).begin, 0);
  EXPECT_EQ(share_of(7, 0, 3).end, 3);
  EXPECT_EQ(share_of(7, 1, 3).begin, 3);
  EXPECT_EQ(share_of(7, 1, 3).end, 5);
  EXPECT_EQ(share_of(7, 2, 3).begin, 5);
  EXPECT_EQ(share_of(7, 2, 3).end, 7);
  // Fewer items than ranks: the last rank holds none.
  EXPECT_EQ(share_of(2, 2, 3).begin, share_of(2, 2, 3).end);
  EXPECT_EQ(share_of(5, 0, 1).end, 5);
}

struct EnvGuard {
  explicit EnvGuard(std::vector<std::pair<std::string, std::string>> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"})
      ::unsetenv(name);
    for (auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~EnvGuard() {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"})
      ::unsetenv(name);
  }
};

TEST(LaunchFromEnv, WithoutWorldSizeAProcessIsAlone) {
  EnvGuard env({});
  const Launch l = treerpo::dist::launch_from_env();
  EXPECT_FALSE(l.joined);
  EXPECT_EQ(l.world_size, 1);
  EXPECT_EQ(l.rank, 0);
}

TEST(LaunchFromEnv, WorldSizeOneJoinsAGroupOfOne) {
  EnvGuard env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
  const Launch l = treerpo::dist::launch_from_env();
  EXPECT_TRUE(l.joined);
  EXPECT_EQ(l.world_size, 1);
}

TEST(LaunchFromEnv, ReadsTorchrunsVariables) {
  EnvGuard env({{"RANK", "2"},
                {"WORLD_SIZE", "4"},
                {"LOCAL_RANK", "1"},
                {"MASTER_ADDR", "10.0.0.5"},
                {"MASTER_PORT", "29511"}});
  const Launch l = treerpo::dist::launch_from_env();
  EXPECT_TRUE(l.joined);
  EXPECT_EQ(l.rank, 2);
  EXPECT_EQ(l.world_size, 4);
  EXPECT_EQ(l.local_rank, 1);
  EXPECT_EQ(l.master_addr, "10.0.0.5");
  EXPECT_EQ(l.master_port, 29511);
}

TEST(LaunchFromEnv, InconsistentVariablesAreBadInputNamingTheVariable) {
  auto error_of = [](std::vector<std::pair<std::string, std::string>> vars) {
    EnvGuard env(std::move(vars));
    try {
      treerpo::dist::launch_from_env();
    } catch (const treerpo::Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      return e.where();
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}), "RANK");
  EXPECT_EQ(
      error_of({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
      "RANK");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}}), "MASTER_ADDR");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"}}), "MASTER_PORT");
  EXPECT_EQ(error_of({{"WORLD_SIZE", "two"}}), "WORLD_SIZE");
}

TEST(RankDevice, CudaMeansTheLocalRanksCardAndAnExplicitIndexIsRefused) {
  Launch l{true, 1, 2, 1, "127.0.0.1", 1};
  EXPECT_EQ(treerpo::dist::rank_device("cuda", l).index(), 1);
  EXPECT_TRUE(treerpo::dist::rank_device("cpu", l).is_cpu());
  EXPECT_THROW(treerpo::dist::rank_device("cuda:0", l), treerpo::Error);
  EXPECT_EQ(treerpo::dist::rank_device("cuda:3", Launch{}).index(), 3);
}

TEST(World, AloneEveryCollectiveIsTheIdentity) {
  World alone;
  EXPECT_FALSE(alone.joined());
  std::vector<torch::Tensor> t{torch::tensor({1.5, 2.5})};
  alone.sum(t, "test");
  EXPECT_DOUBLE_EQ(t[0][1].item<double>(), 2.5);
  EXPECT_EQ(alone.sum(int64_t{7}, "test"), 7);
  EXPECT_EQ(alone.gather("abc", "test"), std::vector<std::string>{"abc"});
}

TEST(World, ThreeRanksSumMaxGatherAndBroadcast) {
  auto codes = in_ranks(3, [](World& w) {
    const int r = w.rank();
    // Rank r holds [r, 10 r]: the sums are [0 + 1 + 2, 0 + 10 + 20].
    std::vector<torch::Tensor> t{torch::tensor({double(r), 10.0 * r}), torch::full({2}, 1.0f)};
    w.sum(t, "test tensors");
    bool ok = t[0][0].item<double>() == 3.0 && t[0][1].item<double>() == 30.0 &&
              t[1][0].item<float>() == 3.0f;
    ok &= w.sum(int64_t{r + 1}, "test") == 6;
    ok &= w.sum(0.5 * r, "test") == 1.5;
    ok &= w.max(int64_t{5 * r}, "test") == 10;
    ok &= w.any(r == 1, "test") && !w.any(false, "test");
    // Different lengths, one empty, come back in rank order.
    auto all = w.gather(std::string(static_cast<size_t>(r), static_cast<char>('a' + r)), "test");
    ok &= all == std::vector<std::string>{"", "b", "cc"};
    ok &= w.broadcast(r == 0 ? "from zero" : "ignored", "test") == "from zero";
    return ok;
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0, 0}));
}

TEST(World, AGroupOfOneRunsItsCollectives) {
  auto codes = in_ranks(1, [](World& w) {
    std::vector<torch::Tensor> params{torch::zeros({2})};
    params[0].requires_grad_(true);
    params[0].mutable_grad() = torch::full({2}, 1.5f);
    bool ok = w.joined() && treerpo::dist::sum_gradients(w, params) == 8;
    return ok && torch::equal(params[0].grad(), torch::full({2}, 1.5f)) &&
           w.sum(int64_t{4}, "test") == 4;
  });
  EXPECT_EQ(codes, (std::vector<int>{0}));
}

TEST(World, GradientsAreSummedOverRanksAcrossBuckets) {
  auto codes = in_ranks(2, [](World& w) {
    // Three parameters; rank 1 never touched the second (no gradient): it contributes zeros.
    std::vector<torch::Tensor> params{torch::zeros({3}), torch::zeros({2, 2}), torch::zeros({5})};
    for (auto& p : params) p.requires_grad_(true);
    const double r = w.rank() + 1; // 1 and 2
    params[0].mutable_grad() = torch::full({3}, r);
    if (w.rank() == 0) params[1].mutable_grad() = torch::full({2, 2}, 4.0);
    params[2].mutable_grad() = torch::arange(5, torch::kFloat) * r;
    // 16-byte buckets: the 12-byte first gradient alone, then one per gradient.
    const int64_t sent = treerpo::dist::sum_gradients(w, params, 16);
    bool ok = sent == (3 + 4 + 5) * 4;
    ok &= torch::equal(params[0].grad(), torch::full({3}, 3.0));
    ok &= torch::equal(params[1].grad(), torch::full({2, 2}, 4.0));
    ok &= torch::equal(params[2].grad(), torch::arange(5, torch::kFloat) * 3);
    return ok;
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0}));
}

// The message of the error that joining `l` throws, and what c10d printed on stderr meanwhile.
std::pair<std::string, std::string> join_failure(const Launch& l, std::chrono::seconds timeout) {
  std::string message = "(joined)";
  ::testing::internal::CaptureStderr();
  try {
    World world(l, torch::kCPU, timeout);
  } catch (const treerpo::Error& e) {
    message = e.what();
  }
  return {message, ::testing::internal::GetCapturedStderr()};
}

TEST(World, RankZeroOnAPortInUseFailsInOneLineNamingThePort) {
  // Another program listens on the port rank 0 would serve the store on.
  const LoopbackSocket other(/*listen=*/true);
  const int port = other.port();
  const auto [message, printed] =
      join_failure(Launch{true, 0, 2, 0, "127.0.0.1", port}, std::chrono::seconds(5));
  EXPECT_NE(message.find("rank 0 could not join the job of 2 ranks at 127.0.0.1:" +
                         std::to_string(port) + ": "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("address already in use; check that every rank started"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(printed, "");
}

TEST(World, ARankWhoseStoreNeverAppearsGivesUpAfterTheTimeout) {
  // Nothing listens on the port: rank 1 retries for the timeout, then fails in one line.
  const int port = free_port();
  const auto start = std::chrono::steady_clock::now();
  const auto [message, printed] =
      join_failure(Launch{true, 1, 2, 1, "127.0.0.1", port}, std::chrono::seconds(2));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, 2.0);
  EXPECT_LT(waited, 30.0);
  EXPECT_NE(message.find("rank 1 could not join the job of 2 ranks at 127.0.0.1:" +
                         std::to_string(port) + ": "),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find(".;"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(printed, "");
}

TEST(World, ACollectiveWithADeadRankFailsNamingIt) {
  auto codes = in_ranks(3, [](World& w) {
    // Every rank through its join first: a rank that dies while rank 0 still completes the mesh
    // is a failed join (rank 0 could not join), not the dead rank this test is about.
    w.sum(int64_t{0}, "the warm-up");
    if (w.rank() == 2) std::_Exit(9); // dies without a word, as a SIGKILL leaves it
    try {
      w.sum(int64_t{1}, "the test total");
    } catch (const treerpo::Error& e) {
      const std::string m = e.what();
      std::fprintf(stderr, "rank %d saw: %s\n", w.rank(), m.c_str());
      return m.find("rank 2 stopped") != std::string::npos &&
             m.find("the test total") != std::string::npos;
    }
    return false;
  });
  EXPECT_EQ(codes, (std::vector<int>{0, 0, 9}));
}

} // namespace
