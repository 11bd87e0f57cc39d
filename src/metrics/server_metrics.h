// The server's metrics: the named event counters (util/counters.h), per-listener series held
// by each connection, and the families read at scrape time. docs/metrics.md lists them all.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "metrics/registry.h"
#include "util/counters.h"

namespace postern::metrics {

// How a connection ended up (label `outcome` of postern_connections_total).
enum class Outcome : uint8_t { kServed, kPeerGone, kMaxConnections, kProxyRefused, kRefused, kTlsFailed };
inline constexpr std::string_view kOutcomeNames[] = {"served",        "peer_gone", "max_connections",
                                                     "proxy_refused", "refused",   "tls_failed"};

// PROXY header errors (label `kind` of postern_proxy_header_errors_total).
inline constexpr std::string_view kProxyErrorKinds[] = {"malformed",      "missing",          "timeout",
                                                        "untrusted_peer", "untrusted_header", "unexpected_header"};
// The kind of a proxy.* event, or -1 when it is not an error.
int proxyErrorKind(EventId e);

// Why a TLS handshake failed, from OpenSSL's reason text (label `reason`).
inline constexpr std::string_view kTlsFailureReasons[] = {
    "plaintext", "no_shared_cipher", "protocol_version", "peer_alert", "certificate", "eof", "timeout", "other"};
size_t tlsFailureReason(std::string_view openssl_reason);

enum class TlsMode : uint8_t { kImplicit, kStarttls };

// The series of one listener. Created at start-up; the hot path only touches its atomics.
struct ListenerMetrics {
  Gauge* open = nullptr;
  std::array<Counter*, std::size(kOutcomeNames)> outcomes{};
  std::array<Counter*, 4> replies{};  // 2xx 3xx 4xx 5xx
  // [v1, v2][proxy, local, unknown]; null on listeners with proxy_protocol = "off".
  std::array<std::array<Counter*, 3>, 2> proxy_headers{};
  std::array<Counter*, std::size(kProxyErrorKinds)> proxy_errors{};
  std::array<Counter*, 2> tls_ok{};  // by TlsMode
  std::array<std::array<Counter*, std::size(kTlsFailureReasons)>, 2> tls_failed{};

  void count(Outcome o) { outcomes[size_t(o)]->inc(); }
  void reply(int code) {
    if (code >= 200 && code < 600) replies[size_t(code / 100 - 2)]->inc();
  }
};

class ServerMetrics {
 public:
  // `shutting_down`: the server's flag; /readyz fails once it is set.
  ServerMetrics(const std::vector<config::Listener>& listeners, const std::atomic<bool>& shutting_down);

  Counters& events() { return events_; }
  Registry& registry() { return registry_; }
  // REQUIRES: `l` is one of the listeners given to the constructor.
  ListenerMetrics& listener(const config::Listener* l) { return *by_listener_.at(l); }

  Histogram& spoolCommitSeconds() { return *spool_commit_; }
  Counter& dnsblHits() { return *dnsbl_hits_; }
  Counter& dnsblLookups(bool listed) { return *dnsbl_lookups_[listed ? 1 : 0]; }

  // Started and not stopping: /readyz answers 200.
  void setStarted() { started_.store(true, std::memory_order_relaxed); }
  bool ready() const {
    return started_.load(std::memory_order_relaxed) && !shutting_down_.load(std::memory_order_relaxed);
  }

  std::string render() const { return registry_.render(); }

 private:
  Counters events_;
  Registry registry_;
  std::vector<std::unique_ptr<ListenerMetrics>> listeners_;
  std::unordered_map<const config::Listener*, ListenerMetrics*> by_listener_;
  Histogram* spool_commit_ = nullptr;
  Counter* dnsbl_hits_ = nullptr;
  std::array<Counter*, 2> dnsbl_lookups_{};
  std::atomic<bool> started_{false};
  const std::atomic<bool>& shutting_down_;
};

// Bucket bounds of postern_spool_commit_duration_seconds: from a fast SSD's fdatasync to a
// slow disk under load.
inline const std::vector<double> kSpoolCommitBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};

}  // namespace postern::metrics
