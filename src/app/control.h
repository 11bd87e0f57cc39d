// The control socket, <data_dir>/state/control.sock (mode 0600): how `postern ban` and
// `postern queue` talk to a running server. One request line per connection
// (control_request.h), a reply, then close. Replies start with "ok" or "error: ...".
#pragma once

#include <asio/local/stream_protocol.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "net/asio.h"
#include "protect/protector.h"
#include "util/status.h"

namespace postern::queue {
class Queue;
}
namespace postern::spool {
class Spool;
}

namespace postern::app {

inline constexpr size_t kMaxControlRequest = 4096;
inline constexpr int kControlBacklog = 16;
inline constexpr std::chrono::seconds kControlRequestTimeout{5};

// What requests act on. Without a queue (no server running: the command line opened the
// spool itself) queue requests that need the scheduler are refused; without a spool,
// every queue request is.
struct ControlTargets {
  protect::Protector* protector = nullptr;
  queue::Queue* queue = nullptr;
  spool::Spool* spool = nullptr;
};

// Executes one request (used by the server and, when no server runs, directly by the
// command line).
std::string executeControl(const ControlTargets& t, std::string_view request);

class ControlServer {
 public:
  // `pool` runs the queue requests (they read the spool); null: on the event loop.
  ControlServer(asio::io_context& io, std::string path, ControlTargets t, asio::thread_pool* pool = nullptr)
      : io_(io), path_(std::move(path)), t_(t), pool_(pool) {}
  Status start();
  void stop();

 private:
  net::awaitable<void> acceptLoop();
  net::awaitable<void> serveOne(asio::local::stream_protocol::socket s);
  asio::io_context& io_;
  std::string path_;
  ControlTargets t_;
  asio::thread_pool* pool_;
  std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor_;
};

// Client side: sends `request` to a running server and returns its answer; nullopt when
// no server is listening (the socket does not exist, or nothing accepts on it: ENOENT,
// ECONNREFUSED). Any other failure (EACCES when the caller may not reach the socket, a
// path too long, a write error) is an error: the caller must not act as if no server ran.
Result<std::optional<std::string>> controlRequest(const std::string& path, const std::string& request);

}  // namespace postern::app
