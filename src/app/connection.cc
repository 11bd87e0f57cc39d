#include "app/connection.h"

#include <asio/experimental/awaitable_operators.hpp>

#include <fmt/format.h>

#include "log/log.h"
#include "metrics/http_server.h"
#include "protect/protector.h"
#include "smtp/proto/reply.h"
#include "proxy/diagnostics.h"
#include "proxy/proxy_parser.h"
#include "smtp/server/session.h"
#include "tls/tls_context.h"

namespace postern::app {

using namespace asio::experimental::awaitable_operators;

namespace {

Endpoint toEndpoint(const net::tcp::endpoint& ep) {
  Endpoint e;
  auto a = ep.address();
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    e.address = IpAddress::v4(b.data());
  } else {
    auto b = a.to_v6().to_bytes();
    e.address = IpAddress::v6(b.data()).unmapped();
  }
  e.port = ep.port();
  return e;
}

}  // namespace

Connection::Connection(smtp::ServerContext& ctx, net::tcp::socket socket, const config::Listener& listener, uint64_t id)
    : ctx_(ctx),
      stream_(std::move(socket)),
      metrics_(ctx.metrics.listener(&listener)),
      start_(std::chrono::steady_clock::now()) {
  info_.id = id;
  info_.metrics = &metrics_;
  info_.listener = &listener;
  std::error_code ec;
  auto peer = stream_.socket().remote_endpoint(ec);
  peer_known_ = !ec;
  if (!ec) info_.peer = toEndpoint(peer);
  auto local = stream_.socket().local_endpoint(ec);
  if (!ec) info_.local = toEndpoint(local);
  info_.client = info_.peer;
}

void Connection::interruptIfIdle() {
  // The session checks shutting_down before each command; cancelling a pending read
  // gets it there now rather than at the next command.
  if (session_ && session_->idle()) {
    std::error_code ignored;
    stream_.socket().cancel(ignored);
  }
}

void Connection::forceClose() { stream_.close(); }

net::awaitable<void> Connection::run() {
  if (!peer_known_) {
    // Reset by the peer between accept and now: there is no address to check against
    // trusted_networks, bans or limits, and nobody to answer. Not an error.
    ctx_.counters.inc("net.peer_gone");
    metrics_.count(metrics::Outcome::kPeerGone);
    log::info("conn.peer_gone").kv("conn", info_.id).kv("listener", info_.listener->name)
        .kv("detail", "the peer reset the connection before it was served");
    stream_.close();
    co_return;
  }
  metrics_.open->add(1);
  if (info_.listener->service->service == config::Service::kMetrics) {
    // Scrapes come every few seconds: no conn.open/conn.close lines for them.
    co_await (serveHttp() || stream_.runWatchdog(kWatchdogGrace));
    stream_.close();
    metrics_.open->add(-1);
    co_return;
  }
  co_await (serve() || stream_.runWatchdog(kWatchdogGrace));
  stream_.close();
  metrics_.open->add(-1);
  if (admitted_) ctx_.protector.releaseConnection(info_.client.address);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
  auto ev = log::info("conn.close");
  ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  ev.kv("duration_ms", int64_t(ms));
}

void Connection::logProxyEvent(EventId event, std::string_view detail, std::string_view fix) {
  ctx_.counters.inc(event);
  proxy_refused_ = true;
  if (int kind = metrics::proxyErrorKind(event); kind >= 0) metrics_.proxy_errors[size_t(kind)]->inc();
  log::warn(event.name()).kv("conn", info_.id).kv("listener", info_.listener->name)
      .kv("port", uint64_t(info_.listener->address.port)).kv("peer", info_.peer.toString())
      .kv("detail", detail).kv("fix", fix);
}

net::awaitable<bool> Connection::refuseHeader(std::string& leftover, bool trusted) {
  // Server-first protocols (SMTP) are greeted at once; their first bytes are checked by
  // the session. A TLS or HTTP client speaks first, so its first bytes are looked at here.
  const bool http = info_.listener->service->service == config::Service::kMetrics;
  if (!info_.listener->service->implicit_tls && !http) co_return true;
  // An HTTP client gets the request timeout from its first byte on, not an SMTP command's.
  if (http)
    stream_.setDeadline(metrics::kHttpReadTimeout);
  else
    stream_.setDeadline(std::chrono::milliseconds(ctx_.config.smtp.command_timeout_ms));
  for (;;) {
    auto sig = proxy::detectSignature(proxy::asBytes(leftover));
    if (sig == proxy::Signature::kNone) co_return true;
    if (sig == proxy::Signature::kV1 || sig == proxy::Signature::kV2) {
      auto m = proxy::headerWhereNoneExpected(info_.listener->proxy == config::ProxyMode::kOff, info_.listener->name,
                                              info_.listener->address.port);
      logProxyEvent(m.event, sig == proxy::Signature::kV1 ? "PROXY v1 header" : "PROXY v2 header", m.fix);
      co_return false;
    }
    char buf[512];
    auto [ec, n] = co_await stream_.readSome(buf, sizeof buf);
    if (ec) co_return !leftover.empty();   // let the TLS layer report what happened
    leftover.append(buf, n);
  }
}

net::awaitable<bool> Connection::proxyStage(std::string& leftover) {
  const config::Listener& l = *info_.listener;
  bool trusted = anyContains(l.trusted_networks, info_.peer.address);
  if (l.proxy == config::ProxyMode::kOff || (l.proxy == config::ProxyMode::kMixed && !trusted))
    co_return co_await refuseHeader(leftover, trusted);

  if (!trusted) {
    // required mode, untrusted peer: it can never be served, so it is closed at once rather
    // than holding a connection slot until header_timeout (nothing is read or sent).
    logProxyEvent("proxy.untrusted_peer", "closed at once: not in trusted_networks",
                  proxy::fixForUntrustedPeer(l.name));
    co_return false;
  }
  // A header is expected (required, or mixed from a trusted peer); nothing is sent to the
  // peer before it is complete and valid.
  stream_.setDeadline(std::chrono::milliseconds(ctx_.config.proxy.header_timeout_ms));
  for (;;) {
    auto bytes = proxy::asBytes(leftover);
    proxy::ParseResult r = proxy::parse(bytes);
    if (r.status == proxy::Status::kDone) {
      if (!trusted) {
        // required mode, untrusted peer: never honoured.
        logProxyEvent("proxy.untrusted_header",
                      r.header.hasAddresses() ? "PROXY header claiming " + r.header.src_addr.toString()
                                              : std::string("PROXY header"),
                      proxy::fixForUntrustedHeader(l.name));
        co_return false;
      }
      const proxy::Header& h = r.header;
      auto countHeader = [&](size_t command) {
        if (metrics::Counter* c = metrics_.proxy_headers[h.version == proxy::Version::kV1 ? 0 : 1][command]) c->inc();
      };
      auto ev = log::info("proxy.header");
      ev.kv("conn", info_.id).kv("listener", l.name).kv("peer", info_.peer.toString())
          .kv("version", h.version == proxy::Version::kV1 ? "v1" : "v2");
      if (h.command == proxy::Command::kLocal) {
        ctx_.counters.inc("proxy.local");
        countHeader(1);
        ev.kv("command", "local");
      } else if (h.hasAddresses()) {
        ctx_.counters.inc("proxy.accepted");
        countHeader(0);
        info_.client = Endpoint{h.src_addr.unmapped(), h.src_port};
        info_.proxied = true;
        ev.kv("client", info_.client.toString());
      } else {
        ctx_.counters.inc("proxy.unknown_address");
        countHeader(2);
        ev.kv("command", "proxy").kv("client", "unknown (served as the proxy's address)");
      }
      leftover.erase(0, r.consumed);
      co_return true;
    }
    if (r.status == proxy::Status::kError) {
      if (!trusted) {
        logProxyEvent("proxy.untrusted_peer", std::string("arrived: ") + std::string(proxy::describeNonProxy(bytes)),
                      proxy::fixForUntrustedPeer(l.name));
      } else if (r.error == proxy::Error::kNotProxy) {
        logProxyEvent("proxy.header_missing", std::string("arrived: ") + std::string(proxy::describeNonProxy(bytes)), proxy::fixForMissingHeader());
      } else {
        logProxyEvent("proxy.malformed", r.reason,
                      "fix the load balancer's PROXY protocol settings (HAProxy: send-proxy or send-proxy-v2)");
      }
      co_return false;
    }
    if (leftover.size() >= proxy::kV2MaxAcceptedLength) {
      logProxyEvent("proxy.malformed", "header too long", "fix the load balancer's PROXY settings");
      co_return false;
    }
    char buf[512];
    // Read no more than the header could still need, so a following ClientHello or
    // command mostly stays in the socket (whatever does arrive is kept as leftover).
    auto [ec, n] = co_await stream_.readSome(buf, sizeof buf);
    if (ec) {
      if (stream_.expired()) {
        if (!trusted)
          logProxyEvent("proxy.untrusted_peer", leftover.empty() ? "nothing arrived" : "incomplete data", proxy::fixForUntrustedPeer(l.name));
        else if (leftover.empty())
          // Silence is what arrived: the same misconfiguration as a ClientHello or a command
          // (a load balancer that does not send headers, in front of a server-first protocol).
          logProxyEvent("proxy.header_missing", "arrived: nothing before header_timeout", proxy::fixForMissingHeader());
        else
          logProxyEvent("proxy.header_timeout", "an incomplete PROXY header arrived before header_timeout", proxy::fixForMissingHeader());
      } else if (!leftover.empty()) {
        logProxyEvent("proxy.malformed", "connection closed inside the PROXY header",
                      "check the load balancer's PROXY settings");
      }
      co_return false;
    }
    leftover.append(buf, n);
  }
}

net::awaitable<bool> Connection::admit() {
  using Admit = protect::Protector::Admit;
  Admit a = ctx_.protector.admitConnection(info_.client.address);
  if (a == Admit::kOk) {
    admitted_ = true;
    co_return true;
  }
  const EventId counter = a == Admit::kBanned               ? EventId("protect.banned_connection")
                          : a == Admit::kTooManyConnections ? EventId("protect.too_many_connections")
                                                            : EventId("protect.connection_rate");
  std::string text = a == Admit::kBanned
                         ? fmt::format("{} Client [{}] is temporarily blocked; try again later",
                                       ctx_.config.hostname, info_.client.address.toString())
                     : a == Admit::kTooManyConnections
                         ? fmt::format("{} Too many connections from [{}]; try again later", ctx_.config.hostname,
                                       info_.client.address.toString())
                         : fmt::format("{} Too many new connections from [{}] per minute; try again later",
                                       ctx_.config.hostname, info_.client.address.toString());
  ctx_.counters.inc(counter);
  auto ev = log::info(counter.name());
  ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  // Cheap refusal: on implicit TLS no handshake is spent on it, the connection just closes.
  if (!info_.listener->service->implicit_tls) {
    std::string reply;
    smtp::appendReply(reply, 421, "4.7.0", text);
    stream_.setDeadline(kRefusalWriteTimeout);
    co_await stream_.writeAll(reply);
  }
  co_return false;
}

net::awaitable<void> Connection::serve() {
  std::string prefix;   // bytes read ahead of the protocol (after a PROXY header)
  const config::Listener& l = *info_.listener;
  bool header_expected = l.proxy == config::ProxyMode::kRequired ||
                         (l.proxy == config::ProxyMode::kMixed && anyContains(l.trusted_networks, info_.peer.address));
  // A peer that sends no header is the client itself: its per-address limits and bans
  // apply before anything is read, so silent connections from one address cannot fill
  // max_connections ahead of the real proxy. (An untrusted peer on a `required` listener
  // is closed at once by the header stage, without a reply.)
  if (!header_expected && !co_await admit()) {
    metrics_.count(metrics::Outcome::kRefused);
    stream_.stopWatchdog();
    co_return;
  }
  if (!co_await proxyStage(prefix)) {
    // Not refused: the peer closed before sending anything (a connect-only health check).
    metrics_.count(proxy_refused_ ? metrics::Outcome::kProxyRefused : metrics::Outcome::kPeerGone);
    stream_.stopWatchdog();
    co_return;
  }
  {
    auto open = log::info("conn.open");
    open.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
    if (info_.proxied) open.kv("via", info_.peer.toString());
    open.kv("local", info_.local.toString());
  }
  // Protection on the real client address (known now), before any TLS or DNS work.
  if (!admitted_ && !co_await admit()) {
    metrics_.count(metrics::Outcome::kRefused);
    stream_.stopWatchdog();
    co_return;
  }
  if (info_.listener->service->implicit_tls) {
    stream_.setDeadline(std::chrono::milliseconds(ctx_.config.smtp.command_timeout_ms));
    if (prefix.empty()) {
      // After a header, wait for the first TLS byte here: a layer-4 health check with
      // `check-send-proxy` closes right after its header, which is not a failed handshake
      // and must not be logged as one. (A timeout still goes to the handshake and is logged.)
      char buf[512];
      auto [ec, n] = co_await stream_.readSome(buf, sizeof buf);
      if (ec && !stream_.expired()) {
        stream_.stopWatchdog();
        co_return;
      }
      prefix.assign(buf, n);
    }
    std::string reason;
    auto tls = ctx_.certs->current();
    if (!co_await stream_.acceptTls(tls->default_ctx.get(), prefix, reason)) {
      ctx_.counters.inc("tls.handshake_failed");
      metrics_.count(metrics::Outcome::kTlsFailed);
      if (metrics::Counter* c = metrics_.tls_failed[0][metrics::tlsFailureReason(reason)]) c->inc();
      auto ev = log::warn("tls.handshake_failed");
      ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
      if (info_.proxied) ev.kv("via", info_.peer.toString());
      ev.kv("mode", "implicit").kv("reason", reason);
      if (reason.find("wrong version number") != std::string::npos ||
          reason.find("http request") != std::string::npos)
        ev.kv("hint", "the client spoke plaintext or sent a PROXY header to a TLS port");
      stream_.stopWatchdog();
      co_return;
    }
    if (metrics_.tls_ok[0]) metrics_.tls_ok[0]->inc();
    log::info("tls.established").kv("conn", info_.id).kv("client", info_.client.toString())
        .kv("tls", stream_.tlsInfo().version + " " + stream_.tlsInfo().cipher).opt("sni", stream_.tlsInfo().sni);
    prefix.clear();
  }
  smtp::Session session(ctx_, stream_, info_);
  session.preload(std::move(prefix));
  if (!header_expected && !info_.listener->service->implicit_tls) session.guardAgainstProxyHeader();
  session_ = &session;
  metrics_.count(metrics::Outcome::kServed);
  co_await session.run();
  session_ = nullptr;
  stream_.stopWatchdog();
}

net::awaitable<void> Connection::serveHttp() {
  std::string prefix;
  if (!co_await proxyStage(prefix)) {
    // Not refused: the peer closed before sending anything (a connect-only health check).
    metrics_.count(proxy_refused_ ? metrics::Outcome::kProxyRefused : metrics::Outcome::kPeerGone);
    stream_.stopWatchdog();
    co_return;
  }
  metrics_.count(metrics::Outcome::kServed);
  metrics::Endpoints endpoints{[this] { return ctx_.metrics.render(); }, [this] { return ctx_.metrics.ready(); }};
  co_await metrics::serveHttp(stream_, std::move(prefix), endpoints);
  stream_.stopWatchdog();
}

}  // namespace postern::app
