#include "treerpo/dist/world.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include <c10/util/Logging.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/types.h>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if TREERPO_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(USE_C10D_NCCL)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "treerpo/util/error.h"

namespace treerpo::dist {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

int env_int(const char* name, int fallback, int at_least) {
  std::string text = env(name);
  if (text.empty()) return fallback;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || v < at_least || v > 1 << 20) {
    throw bad_input(fmt::format("{}={} is not an integer >= {}", name, text, at_least), name,
                    "launch with torchrun or `treerpo-train launch --nproc N -- ...`");
  }
  return static_cast<int>(v);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first line of a c10d message, without its closing period (our error goes on after it).
std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  while (!line.empty() && (line.back() == '.' || line.back() == ' ')) line.pop_back();
  return line;
}

} // namespace

Launch launch_from_env() {
  Launch l;
  if (env("WORLD_SIZE").empty()) return l;
  l.joined = true;
  l.world_size = env_int("WORLD_SIZE", 1, 1);
  if (env("RANK").empty()) {
    throw bad_input("WORLD_SIZE is set but RANK is not", "RANK",
                    "launch with torchrun or `treerpo-train launch --nproc N -- ...`");
  }
  l.rank = env_int("RANK", 0, 0);
  l.local_rank = env_int("LOCAL_RANK", l.rank, 0);
  if (l.rank >= l.world_size) {
    throw bad_input(fmt::format("RANK={} is not below WORLD_SIZE={}", l.rank, l.world_size),
                    "RANK");
  }
  l.master_addr = env("MASTER_ADDR");
  if (l.master_addr.empty()) {
    throw bad_input("WORLD_SIZE is set but MASTER_ADDR is not", "MASTER_ADDR",
                    "set MASTER_ADDR to rank 0's host (torchrun sets it)");
  }
  if (env("MASTER_PORT").empty()) {
    throw bad_input("WORLD_SIZE is set but MASTER_PORT is not", "MASTER_PORT",
                    "set MASTER_PORT to a free port on rank 0's host (torchrun sets it)");
  }
  l.master_port = env_int("MASTER_PORT", 0, 1);
  return l;
}

c10::Device rank_device(const std::string& device, const Launch& launch) {
  c10::Device d(device);
  if (launch.world_size == 1 || !d.is_cuda()) return d;
  if (d.has_index()) {
    throw bad_input(
        fmt::format("model.device is {} in a job of {} ranks", device, launch.world_size),
        "model.device", "set model.device=cuda: each rank takes cuda:LOCAL_RANK");
  }
  return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(launch.local_rank));
}

Share share_of(int64_t count, int rank, int size) {
  const int64_t base = count / size, extra = count % size;
  Share s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  c10::Device device{c10::kCPU};
  std::chrono::seconds timeout{0};
  std::atomic<bool> stop{false};
  std::thread heartbeat;

  ~Group() {
    stop.store(true);
    if (heartbeat.joinable()) heartbeat.join();
  }
};

World::World() = default;
World::~World() = default;
World::World(World&&) noexcept = default;
World& World::operator=(World&&) noexcept = default;

namespace {

c10::intrusive_ptr<c10d::TCPStore> connect_store(const Launch& l, bool server,
                                                 std::chrono::seconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(l.master_port);
  o.isServer = server;
  if (server) o.numWorkers = static_cast<size_t>(l.world_size);
  o.waitWorkers = false;
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(l.master_addr, o);
}

std::string heartbeat_key(int rank) {
  return fmt::format("treerpo/heartbeat/{}", rank);
}

// Each second, this rank's time into the store over a connection of its own. It stops quietly
// when the store goes away (rank 0 exited): the next collective reports that.
void beat(const Launch& l, std::atomic<bool>& stop) {
  try {
    auto store = connect_store(l, false, std::chrono::seconds(10));
    while (!stop.load()) {
      std::string t = std::to_string(now_ms());
      store->set(heartbeat_key(l.rank), std::vector<uint8_t>(t.begin(), t.end()));
      for (int i = 0; i < 10 && !stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (const std::exception&) {
  }
}

c10::intrusive_ptr<c10d::Backend> make_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                               const Launch& l, c10::Device device,
                                               std::chrono::seconds timeout) {
  if (device.is_cuda()) {
#if defined(USE_C10D_NCCL)
    c10::cuda::set_device(device.index());
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, l.rank, l.world_size, o);
#else
    throw bad_input("this LibTorch has no NCCL, so CUDA ranks cannot form a job", "model.device",
                    "use a CUDA build of LibTorch with NCCL (the PyPI wheel has it)");
#endif
  }
#if TREERPO_WITH_GLOO
  auto o = c10d::ProcessGroupGloo::Options::create();
  o->timeout = timeout;
  // On one machine (the launcher's 127.0.0.1) Gloo talks over loopback; otherwise it binds the
  // interface GLOO_SOCKET_IFNAME names, or the one the hostname resolves to, as torch.distributed.
  const std::string ifname = env("GLOO_SOCKET_IFNAME");
  if (!ifname.empty()) {
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (l.master_addr == "127.0.0.1" || l.master_addr == "localhost") {
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, l.rank, l.world_size, o);
#else
  throw bad_input("this build has no Gloo headers, so CPU ranks cannot form a job", "WORLD_SIZE",
                  "install libgloo-dev (scripts/bootstrap.sh does) and rebuild");
#endif
}

} // namespace

World::World(const Launch& launch, c10::Device device, std::chrono::seconds timeout)
    : launch_(launch) {
  if (!launch.joined) return;
  // c10d logs its socket retries, and its failures with a stack trace, on stderr; our error says
  // what failed in one line. Its logs stay available with TORCH_CPP_LOG_LEVEL=WARNING or ERROR,
  // as in PyTorch.
  if (env("TORCH_CPP_LOG_LEVEL").empty()) FLAGS_caffe2_log_level = 3; // fatal only
  group_ = std::make_unique<Group>();
  group_->device = device;
  group_->timeout = timeout;
  try {
    // Under torchrun the agent already serves a store at MASTER_PORT and says so; else rank 0
    // serves it.
    const bool agent_store = env("TORCHELASTIC_USE_AGENT_STORE") == "True";
    group_->store = connect_store(launch, launch.rank == 0 && !agent_store, timeout);
    group_->backend = make_backend(group_->store, launch, device, timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw runtime_failure(fmt::format("rank {} could not join the job of {} ranks at {}:{}: {}",
                                      launch.rank, launch.world_size, launch.master_addr,
                                      launch.master_port, first_line(e.what())),
                          "MASTER_ADDR/MASTER_PORT",
                          "check that every rank started and the port is free");
  }
  group_->heartbeat = std::thread(beat, launch_, std::ref(group_->stop));
}

namespace {

std::string failed_key(int rank) {
  return fmt::format("treerpo/failed/{}", rank);
}

// Which ranks stopped beating: every heartbeat read twice, three seconds apart. A rank that saw
// the failure too says so first, so it is not taken for the lost one when it exits.
std::string lost_ranks(const Launch& l) {
  try {
    auto store = connect_store(l, false, std::chrono::seconds(5));
    store->set(failed_key(l.rank), std::vector<uint8_t>{1});
    auto read = [&] {
      std::map<int, std::string> seen;
      for (int r = 0; r < l.world_size; ++r) {
        if (r == l.rank || !store->check({heartbeat_key(r)})) continue;
        auto v = store->get(heartbeat_key(r));
        seen[r] = std::string(v.begin(), v.end());
      }
      return seen;
    };
    auto before = read();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto after = read();
    std::vector<std::string> lost;
    for (int r = 0; r < l.world_size; ++r) {
      if (r == l.rank || store->check({failed_key(r)})) continue;
      if (after.count(r) == 0 || after[r] == before[r]) lost.push_back(std::to_string(r));
    }
    if (lost.empty()) return "";
    return fmt::format("rank {} stopped", fmt::join(lost, ", "));
  } catch (const std::exception&) {
    return "rank 0 stopped (the store it hosts is gone)";
  }
}

} // namespace

namespace {

template <typename Issue>
void run_collective(const Launch& l, const std::string& what, Issue&& issue) {
  try {
    std::vector<c10::intrusive_ptr<c10d::Work>> works = issue();
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    std::string lost = lost_ranks(l);
    throw runtime_failure(
        fmt::format("rank {} of {}: {} could not be exchanged: {}", l.rank, l.world_size, what,
                    lost.empty() ? first_line(e.what()) : lost),
        "", "see that rank's log; the last checkpoint is intact, so the job can resume");
  }
}

} // namespace

namespace {

void reduce(const Launch& l, World::Group& g, std::vector<at::Tensor>& tensors, c10d::ReduceOp op,
            const std::string& what) {
  std::vector<at::Tensor> on_device;
  for (const auto& t : tensors) on_device.push_back(t.device() == g.device ? t : t.to(g.device));
  run_collective(l, what, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : on_device) {
      std::vector<at::Tensor> one{t};
      c10d::AllreduceOptions o;
      o.reduceOp = op;
      works.push_back(g.backend->allreduce(one, o));
    }
    return works;
  });
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!on_device[i].is_same(tensors[i])) tensors[i].copy_(on_device[i]);
  }
}

int64_t reduce_one(const Launch& l, World::Group& g, int64_t value, c10d::ReduceOp op,
                   const std::string& what) {
  std::vector<at::Tensor> t{torch::full({1}, value, torch::TensorOptions(torch::kLong))};
  reduce(l, g, t, op, what);
  return t[0].item<int64_t>();
}

} // namespace

void World::sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  if (group_) reduce(launch_, *group_, tensors, c10d::ReduceOp::SUM, what);
}

double World::sum(double value, const std::string& what) {
  if (!group_) return value;
  std::vector<at::Tensor> t{torch::full({1}, value, torch::TensorOptions(torch::kDouble))};
  reduce(launch_, *group_, t, c10d::ReduceOp::SUM, what);
  return t[0].item<double>();
}

int64_t World::sum(int64_t value, const std::string& what) {
  return group_ ? reduce_one(launch_, *group_, value, c10d::ReduceOp::SUM, what) : value;
}

int64_t World::max(int64_t value, const std::string& what) {
  return group_ ? reduce_one(launch_, *group_, value, c10d::ReduceOp::MAX, what) : value;
}

bool World::any(bool value, const std::string& what) {
  return max(value ? 1 : 0, what) > 0;
}

std::vector<std::string> World::gather(const std::string& bytes, const std::string& what) {
  if (!group_) return {bytes};
  const auto n = static_cast<size_t>(size());
  const auto on_device = torch::TensorOptions(torch::kLong).device(group_->device);
  std::vector<at::Tensor> length{torch::full({1}, static_cast<int64_t>(bytes.size()), on_device)};
  std::vector<std::vector<at::Tensor>> lengths(1);
  for (size_t r = 0; r < n; ++r) lengths[0].push_back(torch::zeros({1}, on_device));
  run_collective(launch_, what, [&] {
    return std::vector<c10::intrusive_ptr<c10d::Work>>{
        group_->backend->allgather(lengths, length, c10d::AllgatherOptions{})};
  });
  std::vector<int64_t> sizes;
  int64_t longest = 1;
  for (const auto& t : lengths[0]) {
    sizes.push_back(t.cpu().item<int64_t>());
    longest = std::max(longest, sizes.back());
  }
  const auto byte_options = torch::TensorOptions(torch::kUInt8);
  at::Tensor mine = torch::zeros({longest}, byte_options);
  std::memcpy(mine.data_ptr(), bytes.data(), bytes.size());
  std::vector<at::Tensor> input{mine.to(group_->device)};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (size_t r = 0; r < n; ++r)
    outputs[0].push_back(torch::zeros({longest}, byte_options.device(group_->device)));
  run_collective(launch_, what, [&] {
    return std::vector<c10::intrusive_ptr<c10d::Work>>{
        group_->backend->allgather(outputs, input, c10d::AllgatherOptions{})};
  });
  std::vector<std::string> out;
  for (size_t r = 0; r < n; ++r) {
    at::Tensor host = outputs[0][r].cpu();
    out.emplace_back(static_cast<const char*>(host.data_ptr()), static_cast<size_t>(sizes[r]));
  }
  return out;
}

std::string World::broadcast(const std::string& bytes, const std::string& what) {
  if (!group_) return bytes;
  // Few and small (a results file's finished lines): a gather keeps one code path.
  return gather(main() ? bytes : std::string(), what).front();
}

} // namespace treerpo::dist
