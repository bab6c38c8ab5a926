// `treerpo-train check` end to end: JSONL in, one verdict line out per input line, in order.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code;
  std::string output;
};

CliRun run(const std::string& args) {
  std::string command = std::string(TREERPO_CLI) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe))
    output.append(buffer.data(), n);
  int status = pclose(pipe);
  return {WEXITSTATUS(status), output};
}

fs::path write_file(const std::string& name, const std::string& content) {
  fs::path path = fs::temp_directory_path() / ("treerpo_check_" + std::to_string(getpid()) + name);
  std::ofstream(path) << content;
  return path;
}

class CheckCommand : public ::testing::Test {};

TEST_F(CheckCommand, WritesOneVerdictPerLineInOrder) {
  fs::path input =
      write_file("ok.jsonl", R"({"response": "so \\boxed{18}.", "gold": "3 + 15 = 18\n#### 18"})"
                             "\n"
                             R"({"response": "no box here, 18", "gold": "18"})"
                             "\n"
                             R"({"response": "$\\boxed{\\frac{1}{2}}$", "gold": "0.6"})"
                             "\n");
  CliRun r = run("check --input " + input.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"correct\":true,\"extracted\":\"18\"}\n"
                      "{\"correct\":false,\"extracted\":null}\n"
                      "{\"correct\":false,\"extracted\":\"\\\\frac{1}{2}\"}\n");
  fs::remove(input);
}

TEST_F(CheckCommand, ReportsAMalformedLineWithFileAndLineAndExitsTwo) {
  fs::path input =
      write_file("bad.jsonl", "{\"response\": \"\\\\boxed{1}\", \"gold\": \"1\"}\n{oops\n");
  CliRun r = run("check --input " + input.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(input.string() + ":2: not valid JSON"), std::string::npos) << r.output;
  fs::remove(input);
}

TEST_F(CheckCommand, RejectsALineWithoutGold) {
  fs::path input = write_file("nogold.jsonl", "{\"response\": \"\\\\boxed{1}\"}\n");
  CliRun r = run("check --input " + input.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(":1: missing field \"gold\""), std::string::npos) << r.output;
  fs::remove(input);
}

TEST_F(CheckCommand, ReadsStdinForDash) {
  fs::path input = write_file("stdin.jsonl", R"({"response": "\\boxed{50\\%}", "gold": "0.5"})"
                                             "\n");
  CliRun r = run("check --input - < " + input.string());
  EXPECT_EQ(r.output, "{\"correct\":true,\"extracted\":\"50\\\\%\"}\n") << r.output;
  fs::remove(input);
}

} // namespace
