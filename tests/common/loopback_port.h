#pragma once
// Ports on 127.0.0.1 for tests that start ranks (shared by test suites). The kernel chooses them: a
// port derived from the pid can fall in the ephemeral range and be held by another test's socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace treerpo::testing {

// A socket on 127.0.0.1, on a port the kernel chose; listening if `listen`, closed when it goes.
class LoopbackSocket {
public:
  explicit LoopbackSocket(bool listen) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        (listen && ::listen(fd_, 4) != 0) ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd_ >= 0) ::close(fd_); // the destructor does not run for a throwing constructor
      throw std::runtime_error("cannot bind a socket on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() { ::close(fd_); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  int port() const { return port_; }

private:
  int fd_;
  int port_ = 0;
};

// A port the kernel reports free now (the rank that serves on it binds it moments later).
inline int free_port() {
  return LoopbackSocket(false).port();
}

} // namespace treerpo::testing
