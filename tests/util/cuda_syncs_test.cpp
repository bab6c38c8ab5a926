// The CUDA synchronisation counter. It needs no GPU: LibTorch's synchronising entry points call
// c10::cuda::warn_or_error_on_sync before they reach the driver, so the count is taken (and tested
// here) before the call fails for want of a device. Expected counts are the calls each test makes.
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include "treerpo/util/cuda_syncs.h"
#include "treerpo/util/error.h"

#if TREERPO_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

using treerpo::CudaSyncCounter;

#if TREERPO_WITH_CUDA

using c10::cuda::SyncDebugMode;

// Records every warning it is given, in place of LibTorch's printing handler.
struct Recorder : c10::WarningHandler {
  std::vector<std::string> messages;
  void process(const c10::Warning& w) override { messages.push_back(w.msg()); }
};

TEST(CudaSyncCounter, CountsLibTorchsSyncHookAndPassesOtherWarningsOn) {
  ASSERT_TRUE(CudaSyncCounter::available());
  Recorder recorder;
  c10::WarningUtils::WarningHandlerGuard guard(&recorder);
  ASSERT_EQ(c10::cuda::warning_state().get_sync_debug_mode(), SyncDebugMode::L_DISABLED);
  {
    CudaSyncCounter counter;
    EXPECT_EQ(counter.count(), 0);
    // The function every synchronising LibTorch path calls, compiled into libc10_cuda: the mode
    // this counter set is the one the library reads.
    c10::cuda::warn_or_error_on_sync();
    c10::cuda::warn_or_error_on_sync();
    TORCH_WARN("an unrelated warning");
    c10::cuda::warn_or_error_on_sync();
    EXPECT_EQ(counter.count(), 3);
    ASSERT_EQ(recorder.messages.size(), 1u);
    EXPECT_EQ(recorder.messages[0], "an unrelated warning");
  }
  // Mode and handler as they were: a synchronisation is neither counted nor warned of.
  EXPECT_EQ(c10::cuda::warning_state().get_sync_debug_mode(), SyncDebugMode::L_DISABLED);
  EXPECT_EQ(c10::WarningUtils::get_warning_handler(), &recorder);
  c10::cuda::warn_or_error_on_sync();
  EXPECT_EQ(recorder.messages.size(), 1u);
}

TEST(CudaSyncCounter, CountsAStreamSynchronizeEvenWhereTheDriverThenFails) {
  CudaSyncCounter counter;
  // The header's inline synchronize (what a copy to the host and an .item() end in): counted
  // first, then the driver call, which without a GPU fails (and with one succeeds).
  try {
    c10::cuda::stream_synchronize(nullptr);
  } catch (const c10::Error&) {
  }
  EXPECT_EQ(counter.count(), 1);
}

TEST(CudaSyncCounter, NestedCountersBothCountAndTheErrorModeStays) {
  Recorder recorder;
  c10::WarningUtils::WarningHandlerGuard guard(&recorder);
  {
    CudaSyncCounter outer;
    c10::cuda::warn_or_error_on_sync();
    {
      CudaSyncCounter inner;
      c10::cuda::warn_or_error_on_sync();
      c10::cuda::warn_or_error_on_sync();
      EXPECT_EQ(inner.count(), 2);
    }
    c10::cuda::warn_or_error_on_sync();
    EXPECT_EQ(outer.count(), 4);
    EXPECT_EQ(c10::cuda::warning_state().get_sync_debug_mode(), SyncDebugMode::L_WARN);
  }
  EXPECT_TRUE(recorder.messages.empty());
  // A user's "error" mode is kept: the synchronisation throws rather than being counted.
  c10::cuda::warning_state().set_sync_debug_mode(SyncDebugMode::L_ERROR);
  {
    CudaSyncCounter counter;
    EXPECT_THROW(c10::cuda::warn_or_error_on_sync(), c10::Error);
    EXPECT_EQ(counter.count(), 0);
  }
  EXPECT_EQ(c10::cuda::warning_state().get_sync_debug_mode(), SyncDebugMode::L_ERROR);
  c10::cuda::warning_state().set_sync_debug_mode(SyncDebugMode::L_DISABLED);
}

#else

TEST(CudaSyncCounter, RefusedWithoutCuda) {
  EXPECT_FALSE(CudaSyncCounter::available());
  EXPECT_THROW(CudaSyncCounter(), treerpo::Error);
}

#endif

} // namespace
