#pragma once
// The processes of one data-parallel job and the collectives they share: LibTorch's c10d process
// group (Gloo on the CPU, NCCL on CUDA) over a TCPStore, formed from the variables torchrun sets
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Without WORLD_SIZE (or with 1) a
// process is a world of one and every collective is the identity, so the loops are written once.
//
// A collective that fails because another rank died or stalled throws runtime_failure naming that
// rank: every rank refreshes a heartbeat in the store each second, and the ranks whose heartbeat
// stopped (or rank 0, when the store it hosts is gone) are the ones named.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace at {
class Tensor;
}

namespace treerpo::dist {

struct Launch {
  // WORLD_SIZE was set (torchrun sets it for one rank too): the process forms a group, even of one.
  bool joined = false;
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The launch variables of this process. Unset WORLD_SIZE: a world of one without a group (every
// collective the identity); WORLD_SIZE=1: a group of one (the collectives run, as under torchrun
// --nproc-per-node 1). Inconsistent values
// (RANK >= WORLD_SIZE, a missing MASTER_PORT, non-numbers) are bad input naming the variable.
Launch launch_from_env();

// The device a rank trains on: `cuda` (or `cuda:N` in a world of one) means cuda:LOCAL_RANK in a
// larger world; a cuda index with WORLD_SIZE > 1 is bad input (torchrun gives each rank its own).
c10::Device rank_device(const std::string& device, const Launch& launch);

class World {
public:
  // A world of one.
  World();
  // Joins the job described by `launch` (blocks until every rank has joined, or `timeout`); a
  // launch that did not join (no WORLD_SIZE) is a world of one.
  // Collectives use Gloo for CPU tensors and NCCL for CUDA ones; a collective waits at most
  // `timeout` for the other ranks.
  World(const Launch& launch, c10::Device device, std::chrono::seconds timeout);
  ~World();
  World(World&&) noexcept;
  World& operator=(World&&) noexcept;

  // A group was formed (the collectives run, even in a world of one).
  bool joined() const { return group_ != nullptr; }
  int rank() const { return launch_.rank; }
  int size() const { return launch_.world_size; }
  // Rank 0 writes what the job writes (metrics, trees, checkpoints, eval files).
  bool main() const { return launch_.rank == 0; }

  // In-place element-wise sums over ranks (one collective per tensor, issued together; a tensor
  // on another device than the job's travels through a copy). `what` names the exchange in the
  // error message ("gradients", "the step's totals").
  void sum(std::vector<at::Tensor>& tensors, const std::string& what);
  double sum(double value, const std::string& what);
  int64_t sum(int64_t value, const std::string& what);
  int64_t max(int64_t value, const std::string& what);
  bool any(bool value, const std::string& what);
  // Every rank's `bytes`, in rank order.
  std::vector<std::string> gather(const std::string& bytes, const std::string& what);
  // Rank 0's `bytes` on every rank.
  std::string broadcast(const std::string& bytes, const std::string& what);

  struct Group; // the store, the backend and the heartbeat thread

private:
  Launch launch_;
  std::unique_ptr<Group> group_;
};

// Who holds which share of `count` items (prompts, examples, eval batches): rank r holds
// [begin, end), contiguous, sizes differing by at most one, the first `count % size` ranks one
// more.
struct Share {
  int64_t begin = 0, end = 0;
};
Share share_of(int64_t count, int rank, int size);

} // namespace treerpo::dist
