#include "treerpo/util/progress.h"

#include <cstdio>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace treerpo {

Progress::Progress(std::string label, int64_t total, std::string unit, double plain_every_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      plain_every_s_(plain_every_s), terminal_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

std::string Progress::format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

void Progress::advance(int64_t n, const std::string& status) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  // A terminal redraws at most 10 times a second; a log file gets a line every plain_every_s.
  if (done_ >= total_ || since >= (terminal_ ? 0.1 : plain_every_s_)) {
    last_draw_ = now;
    draw(status, false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw("", true);
}

void Progress::draw(const std::string& status, bool final_line) {
  // The progress line is info-level output: --quiet silences it with the other info lines.
  if (!spdlog::default_logger_raw()->should_log(spdlog::level::info)) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1.0;
  std::string line =
      fmt::format("{} {}/{} {} | {:.2f} {}/s | elapsed {} | eta {}", label_, done_, total_, unit_,
                  rate, unit_, format_duration(elapsed), final_line ? "0s" : format_duration(eta));
  if (!status.empty()) line += " | " + status;
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

} // namespace treerpo
