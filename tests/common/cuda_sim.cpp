// The simulator's scheduler: the threads of one block are ucontext fibers run in turn on the
// calling thread. A fiber runs until it reaches a barrier (a warp collective or __syncthreads) or
// returns; when every runnable fiber has had its turn, the barriers whose threads have all arrived
// are released, and a barrier that can no longer be completed is a fault.
#include "cuda_sim.h"

#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define TREERPO_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TREERPO_SIM_ASAN 1
#endif
#endif
#ifdef TREERPO_SIM_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace treerpo::cuda_sim {
namespace {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Each fiber's stack: the kernels keep their state in registers, i.e. here in locals of a few
// KiB; sanitizer builds make frames larger.
constexpr size_t kStackBytes = 256 * 1024;

enum class State { Runnable, AtWarpCollective, AtSyncThreads, Exited, Faulted };

struct Thread {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  uint3 index{};
  int warp = 0, lane = 0;
  State state = State::Runnable;
  int line = 0;            // the source line of the barrier it waits at
  int64_t collectives = 0; // warp collectives reached so far
};

// One warp's exchange slots, two sets used in turn: a lane writes set k % 2 for its k-th shuffle
// and reads it after the barrier; it can write that set again only after the next barrier, which
// every lane reaches after its read.
struct Warp {
  uint64_t slots[2][kWarpSize] = {};
};

struct Run {
  dim3 grid, block;
  uint3 block_index{};
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  ucontext_t scheduler;
  Thread* current = nullptr;
  const std::function<void()>* body = nullptr;
  std::string fault;
  bool abandon = false; // the launch ended early: resumed fibers unwind
  uint64_t blocks_started = 0;
  // Each shared array reached in this launch, and the block (by blocks_started) that last poisoned
  // it.
  std::vector<std::pair<void*, uint64_t>> shared;
};

// Thrown inside a fiber, when its launch ended early, to unwind its frames (their destructors run:
// nothing a kernel or a fault message allocated is left behind).
struct Abandon {};

thread_local Run* g_run = nullptr;
// AddressSanitizer is told of every switch between stacks (its fiber interface), so it checks the
// fibers' frames like any other: the scheduler's stack as a fiber learnt it on entry.
#ifdef TREERPO_SIM_ASAN
thread_local const void* g_scheduler_stack = nullptr;
thread_local size_t g_scheduler_stack_bytes = 0;
#endif

// The scheduler runs `t` until it waits, exits or faults.
[[gnu::noinline]] void to_fiber(ucontext_t* scheduler, Thread& t, size_t stack_bytes) {
#ifdef TREERPO_SIM_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, t.stack.get(), stack_bytes);
  swapcontext(scheduler, &t.context);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  (void)stack_bytes;
  swapcontext(scheduler, &t.context);
#endif
}

// A fiber's first step: (for the sanitizer) where the scheduler's stack is.
void fiber_started() {
#ifdef TREERPO_SIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &g_scheduler_stack, &g_scheduler_stack_bytes);
#endif
}

// `t` hands the thread back to the scheduler; `for_good` when it exited and is never resumed,
// else it continues here when released (or abandoned).
[[gnu::noinline]] void to_scheduler(Thread& t, ucontext_t* scheduler, bool for_good) {
#ifdef TREERPO_SIM_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(for_good ? nullptr : &fake_stack, g_scheduler_stack,
                                 g_scheduler_stack_bytes);
  if (scheduler != nullptr) swapcontext(&t.context, scheduler);
  if (!for_good) {
    __sanitizer_finish_switch_fiber(fake_stack, &g_scheduler_stack, &g_scheduler_stack_bytes);
  }
#else
  (void)for_good;
  if (scheduler != nullptr) swapcontext(&t.context, scheduler);
#endif
}

thread_local std::string g_last_fault;

struct Readable {
  const char* base;
  size_t bytes;
  uint64_t read = 0;
};
thread_local std::vector<Readable> g_readable;

std::string where(const Run& r, const Thread& t) {
  return "block (" + std::to_string(r.block_index.x) + "," + std::to_string(r.block_index.y) + "," +
         std::to_string(r.block_index.z) + ") thread (" + std::to_string(t.index.x) + "," +
         std::to_string(t.index.y) + "," + std::to_string(t.index.z) + ")";
}

Run& running() {
  if (g_run == nullptr || g_run->current == nullptr) {
    throw std::logic_error("cuda_sim: a device built-in called outside a simulated launch");
  }
  return *g_run;
}

// Stops the current thread with `what`; the scheduler ends the launch and resumes the thread only
// to unwind it.
[[noreturn]] void fault(const std::string& what) {
  Run& r = running();
  Thread& t = *r.current;
  if (r.fault.empty()) r.fault = where(r, t) + ": " + what;
  t.state = State::Faulted;
  to_scheduler(t, &r.scheduler, /*for_good=*/false);
  throw Abandon{};
}

// The current thread waits at a barrier until the scheduler releases it (or abandons the launch).
void wait(State at, int line) {
  Run& r = running();
  Thread& t = *r.current;
  t.state = at;
  t.line = line;
  to_scheduler(t, &r.scheduler, /*for_good=*/false);
  if (r.abandon) throw Abandon{};
}

void fiber_entry() {
  fiber_started();
  try {
    if (!g_run->abandon) (*g_run->body)();
  } catch (const Abandon&) {
  }
  Thread& t = *g_run->current;
  t.state = State::Exited;
  // Returning resumes uc_link, the scheduler.
  to_scheduler(t, nullptr, /*for_good=*/true);
}

std::string lanes_text(const std::vector<int>& lanes) {
  std::string s;
  for (int lane : lanes) s += (s.empty() ? "" : ",") + std::to_string(lane);
  return s;
}

// Releases the warps whose lanes all wait at the same collective; a warp where some lanes wait
// and the others cannot come (exited, or at __syncthreads) is a fault. Returns whether any was.
bool release_warps(Run& r) {
  bool released = false;
  for (size_t w = 0; w < r.warps.size() && r.fault.empty(); ++w) {
    const size_t first = w * kWarpSize, end = std::min(r.threads.size(), first + kWarpSize);
    std::vector<int> waiting, elsewhere;
    for (size_t i = first; i < end; ++i) {
      (r.threads[i].state == State::AtWarpCollective ? waiting : elsewhere)
          .push_back(static_cast<int>(i - first));
    }
    if (waiting.empty()) continue;
    const Thread& lead = r.threads[first + static_cast<size_t>(waiting.front())];
    if (!elsewhere.empty()) {
      r.fault = where(r, lead) + ": __shfl_xor_sync at line " + std::to_string(lead.line) +
                " with a full mask, but lanes " + lanes_text(elsewhere) + " of warp " +
                std::to_string(w) + " exited or wait elsewhere (the shuffle needs all 32 lanes)";
      break;
    }
    for (size_t i = first; i < end; ++i) {
      const Thread& t = r.threads[i];
      if (t.line != lead.line || t.collectives != lead.collectives) {
        r.fault = where(r, t) + ": lanes of warp " + std::to_string(w) +
                  " at different shuffles (line " + std::to_string(t.line) + ", collective " +
                  std::to_string(t.collectives) + "; lane " + std::to_string(waiting.front()) +
                  " at line " + std::to_string(lead.line) + ", collective " +
                  std::to_string(lead.collectives) + ")";
        break;
      }
    }
    if (!r.fault.empty()) break;
    for (size_t i = first; i < end; ++i) r.threads[i].state = State::Runnable;
    released = true;
  }
  return released;
}

// Releases __syncthreads when every thread of the block waits at the same one.
bool release_block(Run& r) {
  const Thread* lead = nullptr;
  std::vector<int> elsewhere;
  for (const Thread& t : r.threads) {
    if (t.state == State::AtSyncThreads) {
      if (lead == nullptr) lead = &t;
    } else {
      elsewhere.push_back(static_cast<int>(&t - r.threads.data()));
    }
  }
  if (lead == nullptr) return false;
  if (!elsewhere.empty()) {
    r.fault = where(r, *lead) + ": __syncthreads at line " + std::to_string(lead->line) +
              " that threads " + lanes_text(elsewhere) + " exited without reaching";
    return false;
  }
  for (const Thread& t : r.threads) {
    if (t.line != lead->line) {
      r.fault = where(r, t) + ": __syncthreads at line " + std::to_string(t.line) +
                " while others wait at line " + std::to_string(lead->line);
      return false;
    }
  }
  for (Thread& t : r.threads) t.state = State::Runnable;
  return true;
}

// Makes `t` a fresh fiber that will run the kernel from its start (getcontext returns twice, so
// it stays out of the callers' frames).
[[gnu::noinline]] void start_fiber(Run& r, Thread& t) {
  t.state = State::Runnable;
  t.collectives = 0;
  getcontext(&t.context);
  t.context.uc_stack.ss_sp = t.stack.get();
  t.context.uc_stack.ss_size = kStackBytes;
  t.context.uc_link = &r.scheduler;
  makecontext(&t.context, fiber_entry, 0);
}

// Runs the block r.block_index to the end; false on a fault (in r.fault).
bool run_block(Run& r) {
  ++r.blocks_started; // the block's shared arrays are poisoned anew as its threads reach them
  for (Thread& t : r.threads) start_fiber(r, t);
  for (;;) {
    for (Thread& t : r.threads) {
      if (t.state != State::Runnable) continue;
      r.current = &t;
      to_fiber(&r.scheduler, t, kStackBytes);
      r.current = nullptr;
      if (!r.fault.empty()) return false;
    }
    bool exited = true;
    for (const Thread& t : r.threads) exited = exited && t.state == State::Exited;
    if (exited) return true;
    // Every live thread now waits at a barrier: release the complete ones.
    if (!release_warps(r) && r.fault.empty() && !release_block(r) && r.fault.empty()) {
      r.fault = "block (" + std::to_string(r.block_index.x) + "," +
                std::to_string(r.block_index.y) + "," + std::to_string(r.block_index.z) +
                "): every thread waits and no barrier can complete";
    }
    if (!r.fault.empty()) return false;
  }
}

// After a fault: every thread not yet exited runs once more, to unwind (or, never started, to
// return at once).
void abandon_block(Run& r) {
  r.abandon = true;
  for (Thread& t : r.threads) {
    if (t.state == State::Exited) continue;
    r.current = &t;
    to_fiber(&r.scheduler, t, kStackBytes);
    r.current = nullptr;
  }
}

} // namespace

uint3 thread_index() {
  return running().current->index;
}
uint3 block_index() {
  return running().block_index;
}
dim3 block_dim() {
  return running().block;
}
dim3 grid_dim() {
  return running().grid;
}

const std::string& last_fault() {
  return g_last_fault;
}

ReadableMemory::ReadableMemory(std::initializer_list<std::pair<const void*, size_t>> buffers)
    : first_(g_readable.size()), count_(buffers.size()) {
  for (const auto& [p, bytes] : buffers) g_readable.push_back({static_cast<const char*>(p), bytes});
}

uint64_t ReadableMemory::bytes_read(size_t i) const {
  if (i >= count_)
    throw std::out_of_range("cuda_sim: ReadableMemory has no buffer " + std::to_string(i));
  return g_readable[first_ + i].read;
}

ReadableMemory::~ReadableMemory() {
  // Objects end in the reverse of their making, so this one's buffers are the list's last.
  g_readable.resize(first_);
}

namespace detail {

uint64_t shuffle_xor(unsigned mask, uint64_t bits, int lane_mask, int width, int line) {
  Run& r = running();
  Thread& t = *r.current;
  if (mask != kFullMask) {
    fault("__shfl_xor_sync at line " + std::to_string(line) +
          " with a partial mask (the simulator models full-warp shuffles only)");
  }
  if (width != kWarpSize) {
    fault("__shfl_xor_sync at line " + std::to_string(line) + " with width " +
          std::to_string(width) + " (the simulator models width 32 only)");
  }
  if ((r.block.x * r.block.y * r.block.z) % kWarpSize != 0) {
    fault("__shfl_xor_sync with a full mask in a block of " +
          std::to_string(r.block.x * r.block.y * r.block.z) +
          " threads, not whole warps: the last warp's missing lanes cannot take part");
  }
  const int set = static_cast<int>(t.collectives % 2);
  r.warps[static_cast<size_t>(t.warp)].slots[set][t.lane] = bits;
  ++t.collectives;
  wait(State::AtWarpCollective, line);
  const int from = (t.lane ^ lane_mask) & (kWarpSize - 1);
  return r.warps[static_cast<size_t>(t.warp)].slots[set][from];
}

void sync_threads(int line) {
  wait(State::AtSyncThreads, line);
}

void shared_array(void* p, size_t bytes) {
  Run& r = running();
  auto it =
      std::find_if(r.shared.begin(), r.shared.end(), [p](const auto& s) { return s.first == p; });
  if (it == r.shared.end()) it = r.shared.insert(r.shared.end(), {p, 0});
  if (it->second == r.blocks_started) return; // a thread of this block got here first
  // All bits set: NaN in every floating type, -1 in every signed integer.
  std::memset(p, 0xff, bytes);
  it->second = r.blocks_started;
}

void check_read(const void* p, size_t bytes, size_t align) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  if (address % align != 0) {
    fault("__ldg of " + std::to_string(bytes) + " bytes at an address aligned to less than " +
          std::to_string(align));
  }
  if (g_readable.empty()) return;
  const char* c = static_cast<const char*>(p);
  for (Readable& r : g_readable) {
    if (c >= r.base && c + bytes <= r.base + r.bytes) {
      r.read += bytes;
      return;
    }
  }
  fault("__ldg of " + std::to_string(bytes) + " bytes outside every readable buffer");
}

cudaError_t run_grid(dim3 grid, dim3 block, const std::function<void()>& body) {
  g_last_fault.clear();
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
    return cudaErrorInvalidConfiguration;
  }
  if (g_run != nullptr) throw std::logic_error("cuda_sim: a launch inside a simulated launch");
  Run r;
  r.grid = grid;
  r.block = block;
  r.body = &body;
  r.threads.resize(threads);
  r.warps.resize((threads + kWarpSize - 1) / kWarpSize);
  for (uint64_t i = 0; i < threads; ++i) {
    Thread& t = r.threads[i];
    t.stack.reset(new char[kStackBytes]); // not zeroed: pages a fiber never uses stay unmapped
    t.index = {static_cast<unsigned>(i % block.x), static_cast<unsigned>(i / block.x % block.y),
               static_cast<unsigned>(i / (static_cast<uint64_t>(block.x) * block.y))};
    t.warp = static_cast<int>(i / kWarpSize);
    t.lane = static_cast<int>(i % kWarpSize);
  }
  g_run = &r;
  bool ok = true;
  for (unsigned z = 0; z < grid.z && ok; ++z) {
    for (unsigned y = 0; y < grid.y && ok; ++y) {
      for (unsigned x = 0; x < grid.x && ok; ++x) {
        r.block_index = {x, y, z};
        ok = run_block(r);
        if (!ok) abandon_block(r);
      }
    }
  }
  g_run = nullptr;
  if (ok) return cudaSuccess;
  g_last_fault = r.fault;
  return cudaErrorLaunchFailure;
}

} // namespace detail
} // namespace treerpo::cuda_sim
