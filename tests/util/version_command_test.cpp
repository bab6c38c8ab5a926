// `treerpo-train version` against what CMake configured: the CUDA sources' own record of the
// architectures nvcc compiled must be the list the build asked for.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

std::string run(const std::string& command, int* exit_code) {
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  *exit_code = WEXITSTATUS(pclose(pipe));
  return out;
}

std::vector<int> configured_archs() {
  std::vector<int> archs;
  std::stringstream list(TREERPO_CUDA_ARCHITECTURES);
  for (std::string arch; std::getline(list, arch, ',');) archs.push_back(std::stoi(arch));
  return archs;
}

TEST(VersionCommand, PrintsOneJsonObjectWithWhatWasCompiled) {
  int code = 0;
  const std::string out = run(std::string(TREERPO_CLI) + " version", &code);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(out.find('\n'), out.size() - 1) << "one line: " << out;
  const auto v = nlohmann::json::parse(out);
  EXPECT_EQ(v.at("version"), TREERPO_VERSION);
  EXPECT_EQ(v.at("libtorch").get<std::string>().rfind("2.", 0), 0u) << "LibTorch 2.x only";
  EXPECT_EQ(v.at("cuda_compiled").get<bool>(), TREERPO_WITH_CUDA);
  EXPECT_TRUE(v.at("cuda_available").is_boolean());
  EXPECT_GE(v.at("cpu_threads").get<int>(), 1);
  // ATen's dispatch level for its vectorised CPU kernels; the variable lowers it, as in PyTorch.
  EXPECT_FALSE(v.at("cpu_capability").get<std::string>().empty());
  const auto lowered = nlohmann::json::parse(
      run("ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 " + std::string(TREERPO_CLI) + " version",
          &code));
  ASSERT_EQ(code, 0);
  EXPECT_EQ(lowered.at("cpu_capability"), "DEFAULT");
  EXPECT_EQ(lowered.at("cpu_threads"), 1);
  if (TREERPO_WITH_CUDA) {
    EXPECT_EQ(v.at("cuda_archs").get<std::vector<int>>(), configured_archs());
  } else {
    EXPECT_TRUE(v.at("cuda_archs").empty());
    EXPECT_FALSE(v.at("cuda_available").get<bool>());
  }
}

} // namespace
