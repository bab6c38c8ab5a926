// docs/errors.md is executable: every case there (shell setup, a treerpo-train command, the exact
// line it prints and its exit code) is run here, so the catalogue cannot drift from the code.
// The document's ```sh block holds helpers sourced before each case; $DIR is a fresh folder per
// case, $DEMO a demo model and data made once (demo-data), $CONFIGS the repository's configs/.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace {

struct Case {
  std::string name, run, says, when;
  std::vector<std::string> setup;
  int exit_code = -1;
};

struct Catalogue {
  std::string helpers;
  std::vector<Case> cases;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "### name" starts a case; inside its ```text block, "key: value" lines.
Catalogue parse(const std::string& doc) {
  Catalogue c;
  std::istringstream in(doc);
  std::string line, fence;
  for (; std::getline(in, line);) {
    if (line.rfind("### ", 0) == 0) {
      c.cases.push_back({line.substr(4), "", "", "", {}, -1});
    } else if (fence.empty() && line.rfind("```", 0) == 0) {
      fence = line.substr(3);
    } else if (line == "```") {
      fence.clear();
    } else if (fence == "sh") {
      c.helpers += line + "\n";
    } else if (fence == "text" && !c.cases.empty()) {
      Case& k = c.cases.back();
      const size_t colon = line.find(": ");
      if (colon == std::string::npos) continue;
      const std::string key = line.substr(0, colon), value = line.substr(colon + 2);
      size_t start = value.find_first_not_of(' ');
      const std::string v = start == std::string::npos ? "" : value.substr(start);
      if (key == "setup") k.setup.push_back(v);
      if (key == "run") k.run = v;
      if (key == "says") k.says = v;
      if (key == "when") k.when = v;
      if (key == "exit") k.exit_code = std::stoi(v);
    }
  }
  return c;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
    s.replace(at, from.size(), to);
}

} // namespace

TEST(ErrorsCatalogue, EveryCaseSaysItsLineAndExitsWithItsCode) {
  const Catalogue catalogue = parse(read_file(std::string(TREERPO_SOURCE_DIR) + "/docs/errors.md"));
  ASSERT_GE(catalogue.cases.size(), 15u) << "docs/errors.md lost its cases?";
  const fs::path root = fs::temp_directory_path() / ("treerpo_errors_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string bin = fs::path(TREERPO_CLI).parent_path().string();
  const std::string demo = (root / "demo").string();
  const std::string env = "export PATH=" + bin + ":$PATH DEMO=" + demo +
                          " CONFIGS=" + TREERPO_SOURCE_DIR + "/configs\n";
  ASSERT_EQ(std::system(("bash -c '" + env + "treerpo-train -q demo-data $DEMO --train 16 " +
                         "--test 4 --hidden 32 --layers 2 >/dev/null'")
                            .c_str()),
            0);
  const bool has_cuda = fs::exists("/dev/nvidia0");
  int index = 0;
  for (const Case& k : catalogue.cases) {
    SCOPED_TRACE(k.name);
    EXPECT_FALSE(k.run.empty());
    EXPECT_TRUE(k.exit_code == 1 || k.exit_code == 2) << k.exit_code;
    EXPECT_EQ(k.says.rfind("error: ", 0), 0u) << k.says;
    if (k.when == "no CUDA" && has_cuda) continue;
    const fs::path dir = root / std::to_string(index++);
    fs::create_directories(dir);
    std::string script = catalogue.helpers + env + "export DIR=" + dir.string() + "\nset -e\n";
    for (const std::string& s : k.setup) script += "{ " + s + "\n} >/dev/null 2>&1\n";
    script += "set +e\n" + k.run + " >/dev/null 2>$DIR/said\necho $? > $DIR/exit\n";
    std::ofstream(dir / "case.sh") << script;
    ASSERT_EQ(std::system(("bash " + (dir / "case.sh").string()).c_str()), 0) << script;
    std::string says = k.says;
    replace_all(says, "$DIR", dir.string());
    replace_all(says, "$DEMO", demo);
    EXPECT_EQ(read_file(dir / "said"), says + "\n") << script;
    EXPECT_EQ(std::stoi(read_file(dir / "exit")), k.exit_code);
  }
  fs::remove_all(root);
}
