#pragma once
// Logging setup: spdlog's default logger on stderr, so stdout stays free for JSON/JSONL output.
#include <spdlog/spdlog.h>

namespace treerpo {

enum class Verbosity { Quiet, Normal, Verbose };

void setup_logging(Verbosity verbosity);

} // namespace treerpo
