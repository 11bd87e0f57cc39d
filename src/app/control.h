// The control socket, <data_dir>/state/control.sock (mode 0600): how `postern ban`
// talks to a running server. One request line per connection, a reply, then close:
//   ban list
//   ban add <key> <seconds> <reason...>
//   ban del <key>
// Replies start with "ok" or "error: ...".
#pragma once

#include <asio/local/stream_protocol.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "net/asio.h"
#include "protect/protector.h"

namespace postern::app {

inline constexpr size_t kMaxControlRequest = 4096;
inline constexpr int kControlBacklog = 16;
inline constexpr std::chrono::seconds kControlRequestTimeout{5};

// Executes one request against `p` (pure apart from the protector; used by the server
// and, when no server runs, directly by the command line).
std::string executeControl(protect::Protector& p, std::string_view request);

class ControlServer {
 public:
  ControlServer(asio::io_context& io, std::string path, protect::Protector& p) : io_(io), path_(std::move(path)), p_(p) {}
  Status start();
  void stop();

 private:
  net::awaitable<void> acceptLoop();
  net::awaitable<void> serveOne(asio::local::stream_protocol::socket s);
  asio::io_context& io_;
  std::string path_;
  protect::Protector& p_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
};

// Client side: sends `request` to a running server; nullopt when none is listening.
std::optional<std::string> controlRequest(const std::string& path, const std::string& request);

}  // namespace postern::app
