#include "treerpo/eval/dataset.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "treerpo/util/error.h"

namespace treerpo::eval {
namespace {

std::string field_text(const nlohmann::json& row, const std::string& field,
                       const std::string& where, const char* key_name) {
  auto it = row.find(field);
  if (it == row.end()) {
    throw bad_input(fmt::format("no field '{}'", field), where,
                    fmt::format("set {} to the field that holds it", key_name));
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  throw bad_input(fmt::format("field '{}' is not a string", field), where);
}

} // namespace

std::vector<Problem> load_problems(const std::string& path, const std::string& question_field,
                                   const std::string& answer_field) {
  std::ifstream in(path);
  if (!in) throw bad_input("cannot read the data file", path, "check the path");
  std::vector<Problem> problems;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = fmt::format("{}:{}", path, number);
    nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    if (row.is_discarded() || !row.is_object()) {
      throw bad_input("not a JSON object", where, "one JSON object per line (JSONL)");
    }
    problems.push_back({field_text(row, question_field, where, "the question field"),
                        field_text(row, answer_field, where, "the answer field"), number});
  }
  if (problems.empty()) throw bad_input("no problems in the data file", path);
  return problems;
}

} // namespace treerpo::eval
