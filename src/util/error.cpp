#include "treerpo/util/error.h"

namespace treerpo {

namespace {
// "where: what; hint" on one line; newlines in parts would break the one-line promise.
std::string one_line(const std::string& where, const std::string& what, const std::string& hint) {
  std::string line = where.empty() ? what : where + ": " + what;
  if (!hint.empty()) line += "; " + hint;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}
} // namespace

Error::Error(ErrorKind kind, const std::string& what, const std::string& where,
             const std::string& hint)
    : std::runtime_error(one_line(where, what, hint)), kind_(kind), where_(where), hint_(hint),
      message_(what) {}

} // namespace treerpo
