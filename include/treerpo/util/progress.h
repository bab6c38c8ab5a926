#pragma once
// A progress display for long loops: a redrawn line with rate and ETA on a terminal, plain periodic
// lines (every `plain_every_s` seconds) when stderr is a file or pipe.
#include <chrono>
#include <cstdint>
#include <string>

namespace treerpo {

class Progress {
public:
  Progress(std::string label, int64_t total, std::string unit = "it", double plain_every_s = 10.0);
  ~Progress();
  void advance(int64_t n = 1, const std::string& status = "");
  void finish();
  int64_t done() const { return done_; }

  // "1m05s", "3h02m" — exposed for tests and metrics lines.
  static std::string format_duration(double seconds);

private:
  void draw(const std::string& status, bool final_line);

  std::string label_, unit_;
  int64_t total_, done_ = 0;
  double plain_every_s_;
  bool terminal_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace treerpo
