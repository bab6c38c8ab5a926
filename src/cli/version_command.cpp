// `treerpo-train version`: one JSON object saying what this binary is and what it can use here.
#include <iostream>

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

#include "command.h"
#include "treerpo/util/cuda_build.h"

namespace treerpo::cli {

void add_version_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("version", "Print treerpo's version and what it was built with (JSON)");
  cmd->callback([] {
    const CudaBuild build = cuda_build();
    const bool available = build.compiled && torch::cuda::is_available();
    nlohmann::json out = {
        {"version", TREERPO_VERSION},
        {"libtorch", TORCH_VERSION},
        {"cuda_compiled", build.compiled},
        {"cuda_available", available},
        {"cuda_archs", build.archs},
        {"cuda_runtime", build.runtime_version == 0
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(std::to_string(build.runtime_version / 1000) + "." +
                                              std::to_string(build.runtime_version % 1000 / 10))},
        {"cuda_devices", available ? torch::cuda::device_count() : 0},
        // The instruction set of ATen's CPU kernels here (ATEN_CPU_CAPABILITY lowers it), which a
        // CPU run's bits depend on (README, "Outputs of a training run"), and the intra-op threads.
        {"cpu_capability", at::get_cpu_capability()},
        {"cpu_threads", at::get_num_threads()},
    };
    std::cout << out.dump() << "\n";
  });
}

} // namespace treerpo::cli
