// One accepted connection: the stages in front of the protocol session (PROXY header,
// implicit TLS), the session itself, and the deadline watchdog.
#pragma once

#include <chrono>
#include <string>

#include "config/config.h"
#include "net/stream.h"
#include "smtp/server/context.h"
#include "metrics/server_metrics.h"

namespace postern::smtp {
class Session;
}

namespace postern::app {

inline constexpr std::chrono::seconds kWatchdogGrace{10};
inline constexpr std::chrono::seconds kRefusalWriteTimeout{5};   // writing the 421 to a refused client

class Connection {
 public:
  Connection(smtp::ServerContext& ctx, net::tcp::socket socket, const config::Listener& listener, uint64_t id);
  net::awaitable<void> run();
  // Shutdown: a session waiting for the next command is told 421 and closed; one in the
  // middle of a transaction finishes it first.
  void interruptIfIdle();
  void forceClose();

 private:
  net::awaitable<void> serve();
  // Bans and per-client connection limits; false (already answered) to close.
  net::awaitable<bool> admit();
  // The PROXY stage (DESIGN.md "PROXY modes"): reads and applies a header when the
  // listener's mode and the peer's address call for one. `leftover` receives the bytes
  // read past the header (or the first bytes of a direct client). False: close.
  net::awaitable<bool> proxyStage(std::string& leftover);
  // Reads the first bytes of a client that must not send a header; false (logged) when
  // they are a PROXY signature.
  net::awaitable<bool> refuseHeader(std::string& leftover, bool trusted);
  // Counts `event` (its name is also the log event) and the listener's PROXY error kind.
  void logProxyEvent(EventId event, std::string_view detail, std::string_view fix);
  // The metrics listener: the PROXY stage, then one HTTP request.
  net::awaitable<void> serveHttp();

  smtp::ServerContext& ctx_;
  net::Stream stream_;
  smtp::ConnectionInfo info_;
  metrics::ListenerMetrics& metrics_;
  std::chrono::steady_clock::time_point start_;
  smtp::Session* session_ = nullptr;
  // False when the peer had already reset the connection before it was looked at (HAProxy's
  // layer-4 health checks do this): its address is unknown and nothing can be served.
  bool peer_known_ = false;
  bool proxy_refused_ = false;   // logProxyEvent ran: the PROXY stage refused the peer
  bool admitted_ = false;   // counted by the protector until the connection ends   // while the protocol session runs
};

}  // namespace postern::app
