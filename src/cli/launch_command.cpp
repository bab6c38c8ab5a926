// `treerpo-train launch --nproc N -- <subcommand> <args>`: N ranks of this executable on this
// machine with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), for users without torchrun. As torchrun does, the first rank that fails stops the
// job: the others get `--grace` seconds to notice it at their next collective and exit with their
// own line, then SIGTERM, then SIGKILL; SIGINT/SIGTERM to the launcher go to every rank (each
// checkpoints at the end of its step and stops).
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "command.h"
#include "treerpo/util/error.h"

namespace treerpo::cli {
namespace {

struct LaunchArgs {
  int nproc = 1;
  int master_port = 0; // 0: MASTER_PORT from the environment, else a free port
  int grace_s = 30;
  std::vector<std::string> command;
};

std::atomic<int> g_forward{0};

extern "C" void forward_signal(int signal) {
  g_forward.store(signal);
}

// A port the kernel reports free on 127.0.0.1 (rank 0's TCPStore binds it moments later).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw runtime_failure("cannot find a free port on 127.0.0.1", "launch",
                          "pass --master-port or set MASTER_PORT");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", s, strsignal(s));
  }
  return fmt::format("exited with code {}", WEXITSTATUS(status));
}

pid_t start_rank(const LaunchArgs& a, int rank, int port) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  // As torchrun: ranks sharing a machine share its cores, so each takes its part (unless set).
  const long cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  ::setenv("OMP_NUM_THREADS", std::to_string(std::max(1L, cores / a.nproc)).c_str(), 0);
  std::vector<std::string> args = {"treerpo-train"};
  args.insert(args.end(), a.command.begin(), a.command.end());
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  std::fprintf(stderr, "error: launch: cannot start rank %d: %s\n", rank, std::strerror(errno));
  std::_Exit(1);
}

void run_launch(const LaunchArgs& a) {
  if (a.command.empty()) {
    throw bad_input("no subcommand to launch", "launch",
                    "e.g. treerpo-train launch --nproc 2 -- train --config FILE");
  }
  if (a.command.front() == "launch") throw bad_input("launch cannot launch itself", "launch");
  int port = a.master_port;
  if (port == 0 && std::getenv("MASTER_PORT")) port = std::atoi(std::getenv("MASTER_PORT"));
  if (port == 0) port = free_port();

  std::signal(SIGINT, forward_signal);
  std::signal(SIGTERM, forward_signal);
  std::vector<pid_t> pids;
  for (int r = 0; r < a.nproc; ++r) pids.push_back(start_rank(a, r, port));

  using Clock = std::chrono::steady_clock;
  std::vector<bool> running(pids.size(), true);
  std::optional<std::string> failure;
  int failure_code = 1;
  std::optional<Clock::time_point> failed_at;
  bool terminated = false, killed = false;
  for (size_t left = pids.size(); left > 0;) {
    if (int s = g_forward.exchange(0); s != 0) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (running[r]) ::kill(pids[r], SIGTERM);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (pids[r] != pid || !running[r]) continue;
        running[r] = false;
        --left;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && !failure) {
          failure = fmt::format("rank {} {}", r, describe(status));
          failure_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
          failed_at = Clock::now();
        }
      }
      continue;
    }
    if (failed_at) {
      const double waited = std::chrono::duration<double>(Clock::now() - *failed_at).count();
      if (!terminated && waited > a.grace_s) {
        for (size_t r = 0; r < pids.size(); ++r)
          if (running[r]) ::kill(pids[r], SIGTERM);
        terminated = true;
      }
      if (!killed && waited > a.grace_s + 10) {
        for (size_t r = 0; r < pids.size(); ++r)
          if (running[r]) ::kill(pids[r], SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (failure) {
    throw Error(failure_code == 2 ? ErrorKind::BadInput : ErrorKind::Runtime,
                fmt::format("launch: {}; the job of {} ranks stopped", *failure, a.nproc), "",
                "see that rank's error line above");
  }
}

} // namespace

void add_launch_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch", "Run a subcommand as N data-parallel ranks on this machine (as torchrun does)");
  static LaunchArgs a;
  cmd->add_option("--nproc", a.nproc, "ranks to start")->required()->check(CLI::Range(1, 1024));
  cmd->add_option("--master-port", a.master_port,
                  "rank 0's store port (default: MASTER_PORT, else a free port)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--grace", a.grace_s,
                  "seconds the other ranks get to stop by themselves after one fails")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("command", a.command, "the subcommand and its arguments, after --")->required();
  cmd->callback([] { run_launch(a); });
}

} // namespace treerpo::cli
