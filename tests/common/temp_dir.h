#pragma once
// A fresh empty folder under the system temp dir, removed when the object goes (shared by test
// suites).
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

namespace treerpo::testing {

class TempDir {
public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("treerpo-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

// A fresh folder TEMP/<prefix><pid> for fixtures a test binary's tests share; callers keep it in a
// function-local static so it is made once and lives as long as the binary.
inline std::filesystem::path make_process_scratch(const std::string& prefix) {
  std::filesystem::path d =
      std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

} // namespace treerpo::testing
