// STARTTLS (RFC 3207). Anything the client pipelined after the command arrived as
// plaintext and is discarded, never executed inside TLS (RFC 3207 §4.2, CVE-2011-0411);
// the session state is reset and the client must EHLO again (§4.2).
#include <fmt/format.h>

#include "log/log.h"
#include "metrics/server_metrics.h"
#include "smtp/server/session.h"
#include "tls/tls_context.h"

namespace postern::smtp {

net::awaitable<bool> Session::onStarttls(const Command& cmd) {
  if (!cmd.argument.empty()) {
    reject(rejection::kSyntaxError, 501, "5.5.4", "STARTTLS takes no arguments");
    co_return !quit_;
  }
  if (stream_.isTls()) {
    reject(rejection::kBadSequence, 503, "5.5.1", "TLS already active");
    co_return !quit_;
  }
  if (!tlsAvailable() || !info_.listener->service->offers_starttls) {
    reject(rejection::kStarttlsUnavailable, 502, "5.5.1", "STARTTLS not available");
    co_return !quit_;
  }
  reply(220, "2.0.0", "Ready to start TLS");
  if (!co_await flush()) co_return false;
  if (!in_.empty()) {
    ctx_.counters.inc("smtp.starttls_pipelined_discarded");
    log::warn("smtp.starttls_injection").kv("conn", info_.id).kv("client", info_.client.toString())
        .kv("discarded_bytes", uint64_t(in_.size()));
    std::string().swap(in_);
  }
  stream_.setDeadline(command_timeout_);
  std::string reason;
  auto ctx = ctx_.certs->current();
  std::string no_prefix;
  if (!co_await stream_.acceptTls(ctx->default_ctx.get(), no_prefix, reason)) {
    ctx_.counters.inc("tls.handshake_failed");
    if (info_.metrics)
      if (metrics::Counter* c = info_.metrics->tls_failed[1][metrics::tlsFailureReason(reason)]) c->inc();
    auto ev = log::warn("tls.handshake_failed");
    ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
    if (info_.proxied) ev.kv("via", info_.peer.toString());
    ev.kv("mode", "starttls").kv("reason", reason);
    co_return false;
  }
  if (info_.metrics && info_.metrics->tls_ok[1]) info_.metrics->tls_ok[1]->inc();
  log::info("tls.established").kv("conn", info_.id).kv("client", info_.client.toString())
      .kv("tls", stream_.tlsInfo().version + " " + stream_.tlsInfo().cipher).opt("sni", stream_.tlsInfo().sni);
  resetTransaction();
  helo_.clear();
  esmtp_ = false;
  co_return true;
}

}  // namespace postern::smtp
