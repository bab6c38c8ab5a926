// Loading the YAML run configuration: file, then --set overrides, then validation (validate.cpp).
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "derived.h"
#include "fields.h"
#include "treerpo/util/error.h"
#include "validate.h"

namespace treerpo {
namespace {

using config_detail::for_each_field;

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

// Typed assignment from one YAML node; throws with the key's full name and where it came from.
struct Assign {
  const YAML::Node& node;
  const std::string& where;
  const std::string& key;
  bool raw_string; // --set values for string keys are taken verbatim, not parsed as YAML

  [[noreturn]] void fail(const std::string& expected) const {
    throw bad_input(fmt::format("{}: expected {}, got {}", key, expected, describe(node)), where,
                    "fix the value");
  }
  void operator()(std::string& out) const {
    if (raw_string) return; // handled by the caller
    if (!node.IsScalar()) fail("a string");
    out = node.Scalar();
  }
  void operator()(bool& out) const {
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, out)) fail("true or false");
  }
  void operator()(int64_t& out) const {
    long long v = 0;
    if (!node.IsScalar() || !YAML::convert<long long>::decode(node, v)) fail("an integer");
    out = v;
  }
  void operator()(double& out) const {
    double v = 0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
      fail("a number");
    }
    out = v;
  }
  void operator()(std::vector<std::string>& out) const {
    if (!node.IsSequence()) fail("a list of strings");
    std::vector<std::string> items;
    for (const auto& item : node) {
      if (!item.IsScalar()) fail("a list of strings");
      items.push_back(item.Scalar());
    }
    out = std::move(items);
  }
};

// Sets `key` from `node`; false when no such key exists.
bool set_field(Config& config, const std::string& key, const YAML::Node& node,
               const std::string& where, const std::string* raw) {
  bool found = false;
  for_each_field(config, [&](const char* name, auto& field) {
    if (found || key != name) return;
    found = true;
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::string>) {
      if (raw != nullptr) {
        field = *raw;
        return;
      }
    }
    Assign{node, where, key, false}(field);
  });
  return found;
}

std::string known_keys(const Config& config, const std::string& section) {
  std::string list;
  for_each_field(config, [&](const char* name, const auto&) {
    std::string full(name);
    if (full.compare(0, section.size() + 1, section + ".") != 0) return;
    if (!list.empty()) list += ", ";
    list += full.substr(section.size() + 1);
  });
  return list;
}

const char* const kSections[] = {"model",      "data", "rollout", "train",      "sft",
                                 "checkpoint", "eval", "log",     "distributed"};

bool is_section(const std::string& name) {
  for (const char* s : kSections) {
    if (name == s) return true;
  }
  return false;
}

std::string at(const std::string& path, const YAML::Mark& mark) {
  return fmt::format("{}:{}", path, mark.line + 1);
}

void load_file(Config& config, const std::string& path,
               std::map<std::string, std::string>& origin) {
  std::ifstream in(path);
  if (!in) throw bad_input("cannot read the config file", path, "check the path");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw bad_input("invalid YAML: " + e.msg, at(path, e.mark), "fix the syntax");
  }
  if (root.IsNull()) return; // an empty file means all defaults
  if (!root.IsMap()) throw bad_input("expected a mapping of sections", at(path, root.Mark()));
  for (const auto& section : root) {
    std::string name = section.first.Scalar();
    if (!is_section(name)) {
      throw bad_input(
          fmt::format("unknown section '{}'", name), at(path, section.first.Mark()),
          "known sections: model, data, rollout, train, sft, checkpoint, eval, log, distributed");
    }
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) {
      throw bad_input(fmt::format("section '{}' must be a mapping of keys", name),
                      at(path, section.second.Mark()));
    }
    for (const auto& entry : section.second) {
      std::string key = name + "." + entry.first.Scalar();
      std::string where = at(path, entry.first.Mark());
      if (!set_field(config, key, entry.second, where, nullptr)) {
        throw bad_input(fmt::format("unknown key {}", key), where,
                        fmt::format("known keys of '{}': {}", name, known_keys(config, name)));
      }
      origin[key] = where;
    }
  }
}

void apply_override(Config& config, const std::string& assignment,
                    std::map<std::string, std::string>& origin) {
  std::string where = "--set " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw bad_input("expected section.key=value", where, "e.g. --set train.lr=1e-6");
  }
  std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  auto dot = key.find('.');
  std::string section = dot == std::string::npos ? key : key.substr(0, dot);
  if (!is_section(section)) {
    throw bad_input(
        fmt::format("unknown section '{}'", section), where,
        "known sections: model, data, rollout, train, sft, checkpoint, eval, log, distributed");
  }
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception&) {
    node = YAML::Node(value); // not YAML: a plain string, type-checked by the field
  }
  if (!set_field(config, key, node, where, &value)) {
    throw bad_input(fmt::format("unknown key {}", key), where,
                    fmt::format("known keys of '{}': {}", section, known_keys(config, section)));
  }
  origin[key] = where;
}

} // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config config;
  std::map<std::string, std::string> origin; // full key -> "file:line" or "--set k=v"
  if (!path.empty()) load_file(config, path, origin);
  for (const auto& assignment : overrides) apply_override(config, assignment, origin);
  for (const auto& [key, where] : origin) config.explicitly_set.insert(key);
  config_detail::resolve_derived(config, origin);
  config_detail::validate(config, origin);
  return config;
}

namespace {

// A field's value as to_yaml writes it.
template <typename T> void emit_value(YAML::Emitter& out, const T& field) {
  if constexpr (std::is_same_v<T, double>) {
    out << fmt::format("{}", field); // shortest text that reads back to the same double
  } else if constexpr (std::is_same_v<T, std::string>) {
    out << YAML::DoubleQuoted << field;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& s : field) out << YAML::DoubleQuoted << s;
    out << YAML::EndSeq;
  } else {
    out << field;
  }
}

// Every key with its value's text, in field order; with `used_only` the keys `config` uses
// (config_detail::key_applies) only.
std::vector<std::pair<std::string, std::string>> field_texts(const Config& config, bool used_only) {
  std::vector<std::pair<std::string, std::string>> texts;
  for_each_field(config, [&](const char* name, const auto& field) {
    if (used_only && !config_detail::key_applies(config, name)) return;
    YAML::Emitter out;
    emit_value(out, field);
    texts.emplace_back(name, out.c_str());
  });
  return texts;
}

} // namespace

std::string changed_settings(const Config& config) {
  std::map<std::string, std::string> defaults;
  for (auto& [key, text] : field_texts(Config{}, false)) defaults[key] = std::move(text);
  std::string out;
  for (const auto& [key, text] : field_texts(config, true)) {
    const auto d = defaults.find(key);
    if (d == defaults.end() || d->second != text) out += key + ": " + text + "\n";
  }
  return out;
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string open_section;
  for_each_field(config, [&](const char* name, const auto& field) {
    std::string full(name);
    // Keys the chosen shape does not read are left out, so the file loads back as it is.
    if (!config_detail::key_applies(config, full)) return;
    std::string section = full.substr(0, full.find('.'));
    if (section != open_section) {
      if (!open_section.empty()) out << YAML::EndMap;
      out << YAML::Key << section << YAML::Value << YAML::BeginMap;
      open_section = section;
    }
    out << YAML::Key << full.substr(section.size() + 1) << YAML::Value;
    emit_value(out, field);
  });
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

} // namespace treerpo
