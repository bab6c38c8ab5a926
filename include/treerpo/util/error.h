#pragma once
// The one error type of the project: what went wrong, where, and what the user can do about it.
// cli/ prints it as a single line; the kind decides the exit code (2 bad input, 1 runtime failure).
#include <stdexcept>
#include <string>

namespace treerpo {

enum class ErrorKind { BadInput, Runtime };

class Error : public std::runtime_error {
public:
  // `where` is a location a user can find ("config.yaml:12", "model.safetensors: tensor
  // lm_head.weight", "stdin:3"); `hint` says what to do. Either may be empty.
  Error(ErrorKind kind, const std::string& what, const std::string& where = "",
        const std::string& hint = "");

  ErrorKind kind() const { return kind_; }
  int exit_code() const { return kind_ == ErrorKind::BadInput ? 2 : 1; }
  const std::string& where() const { return where_; }
  const std::string& hint() const { return hint_; }
  const std::string& message() const { return message_; }

private:
  ErrorKind kind_;
  std::string where_, hint_, message_;
};

// Shorthands for the two kinds.
inline Error bad_input(const std::string& what, const std::string& where = "",
                       const std::string& hint = "") {
  return Error(ErrorKind::BadInput, what, where, hint);
}
inline Error runtime_failure(const std::string& what, const std::string& where = "",
                             const std::string& hint = "") {
  return Error(ErrorKind::Runtime, what, where, hint);
}

} // namespace treerpo
