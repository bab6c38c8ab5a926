#include "treerpo/rollout/viewer.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "treerpo/rollout/tree_json.h"
#include "treerpo/util/error.h"
#include "viewer_page.h"

namespace fs = std::filesystem;

namespace treerpo::rollout {

namespace {

fs::path step_file(const fs::path& dir, int64_t step, const char* ext) {
  return dir / ("step-" + std::to_string(step) + ext);
}

std::ofstream open_for_writing(const fs::path& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out)
    throw runtime_failure("cannot write " + path.string(), "", "check the folder is writable");
  return out;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_input("cannot read " + path.string(), "", "check the run directory");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// The page's placeholder for the step list (a JS expression in index.html).
constexpr const char* kStepsPlaceholder = "/*TREERPO_STEPS*/[]";

} // namespace

std::vector<int64_t> logged_steps(const fs::path& trees_dir) {
  static const std::regex name(R"(step-([0-9]+)\.jsonl)");
  std::vector<int64_t> steps;
  if (!fs::is_directory(trees_dir)) return steps;
  for (const auto& entry : fs::directory_iterator(trees_dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, m, name)) steps.push_back(std::stoll(m[1].str()));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

void write_step_script(const fs::path& trees_dir, int64_t step) {
  // Each line of trees.jsonl is a JSON object, and JSON is valid JavaScript: the script is the
  // lines as an array literal.
  std::ofstream out = open_for_writing(step_file(trees_dir, step, ".js"));
  out << "treerpoSteps[" << step << "] = [\n";
  const std::vector<std::string> lines = lines_of(step_file(trees_dir, step, ".jsonl"));
  for (size_t i = 0; i < lines.size(); ++i)
    out << lines[i] << (i + 1 < lines.size() ? ",\n" : "\n");
  out << "];\n";
}

fs::path write_viewer_index(const fs::path& trees_dir) {
  nlohmann::json steps = nlohmann::json::array();
  for (int64_t step : logged_steps(trees_dir)) {
    // Only names: reading every step's data here would make each rewrite grow with the run.
    steps.push_back({{"step", step}, {"script", step_file({}, step, ".js").string()}});
  }
  std::string page = kViewerPage;
  const size_t at = page.find(kStepsPlaceholder);
  // The page is part of the build; a missing placeholder is a build defect, not user input.
  if (at == std::string::npos) throw runtime_failure("viewer page lacks its step placeholder");
  page.replace(at, std::string(kStepsPlaceholder).size(), steps.dump());
  const fs::path index = trees_dir / "index.html";
  open_for_writing(index) << page;
  return index;
}

void write_logged_step(const fs::path& trees_dir, int64_t step, const std::vector<Tree>& trees,
                       const tokenizer::Tokenizer& tok) {
  std::vector<std::string> lines;
  for (const Tree& tree : trees) lines.push_back(tree_to_json(tree, tok).dump());
  write_logged_step(trees_dir, step, lines);
}

void write_logged_step(const fs::path& trees_dir, int64_t step,
                       const std::vector<std::string>& lines) {
  fs::create_directories(trees_dir);
  {
    std::ofstream jsonl = open_for_writing(step_file(trees_dir, step, ".jsonl"));
    for (const std::string& line : lines) jsonl << line << "\n";
  }
  write_step_script(trees_dir, step);
  write_viewer_index(trees_dir);
}

} // namespace treerpo::rollout
