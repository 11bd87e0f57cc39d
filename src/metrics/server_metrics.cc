#include "metrics/server_metrics.h"

namespace postern::metrics {

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != haystack.npos;
}

}  // namespace

int proxyErrorKind(EventId e) {
  if (e == EventId("proxy.malformed")) return 0;
  if (e == EventId("proxy.header_missing")) return 1;
  if (e == EventId("proxy.header_timeout")) return 2;
  if (e == EventId("proxy.untrusted_peer")) return 3;
  if (e == EventId("proxy.untrusted_header")) return 4;
  if (e == EventId("proxy.unexpected_header")) return 5;
  return -1;
}

size_t tlsFailureReason(std::string_view r) {
  // OpenSSL's reason strings (ERR_reason_error_string) and the stream's own texts.
  if (contains(r, "wrong version number") || contains(r, "http request") || contains(r, "packet length too long") ||
      contains(r, "record layer failure"))
    return 0;
  if (contains(r, "no shared cipher") || contains(r, "no suitable signature") || contains(r, "no shared group"))
    return 1;
  if (contains(r, "unsupported protocol") || contains(r, "version too low") || contains(r, "protocol version"))
    return 2;
  if (contains(r, "certificate")) return 4;
  if (contains(r, "alert")) return 3;
  if (contains(r, "eof") || contains(r, "closed the connection") || contains(r, "reset by peer")) return 5;
  if (contains(r, "timed out") || contains(r, "canceled") || contains(r, "cancelled")) return 6;
  return 7;
}

ServerMetrics::ServerMetrics(const std::vector<config::Listener>& listeners, const std::atomic<bool>& shutting_down)
    : shutting_down_(shutting_down) {
  for (const auto& l : listeners) {
    auto m = std::make_unique<ListenerMetrics>();
    const std::string& name = l.name;
    m->open =
        &registry_.gauge("postern_connections_open", "Connections being served, by listener.", {{"listener", name}});
    for (size_t i = 0; i < std::size(kOutcomeNames); ++i)
      m->outcomes[i] = &registry_.counter(
          "postern_connections_total",
          "Connections accepted, by listener and how they ended up: served (reached the protocol), peer_gone, "
          "max_connections, proxy_refused (PROXY stage), refused (bans and per-client limits), tls_failed.",
          {{"listener", name}, {"outcome", std::string(kOutcomeNames[i])}});
    for (size_t k = 0; k < std::size(kProxyErrorKinds); ++k)
      m->proxy_errors[k] = &registry_.counter("postern_proxy_header_errors_total",
                                              "Connections closed at the PROXY stage, by listener and kind of error.",
                                              {{"listener", name}, {"kind", std::string(kProxyErrorKinds[k])}});
    if (l.proxy != config::ProxyMode::kOff) {
      static constexpr const char* kVersions[] = {"v1", "v2"};
      static constexpr const char* kCommands[] = {"proxy", "local", "unknown"};
      for (size_t v = 0; v < 2; ++v)
        for (size_t c = 0; c < 3; ++c) {
          if (v == 0 && c == 1) continue;  // v1 has no LOCAL command
          m->proxy_headers[v][c] = &registry_.counter(
              "postern_proxy_headers_total",
              "Valid PROXY headers, by listener, version and command (unknown: no addresses, served as the proxy).",
              {{"listener", name}, {"version", kVersions[v]}, {"command", kCommands[c]}});
        }
    }
    if (l.service->service == config::Service::kMetrics) {
      // An HTTP listener: no SMTP replies, no TLS.
      by_listener_[&l] = m.get();
      listeners_.push_back(std::move(m));
      continue;
    }
    static constexpr const char* kClasses[] = {"2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i < 4; ++i)
      m->replies[i] = &registry_.counter("postern_smtp_replies_total", "SMTP replies sent, by listener and code class.",
                                         {{"listener", name}, {"class", kClasses[i]}});
    static constexpr const char* kModes[] = {"implicit", "starttls"};
    for (size_t mode = 0; mode < 2; ++mode) {
      bool possible = mode == 0 ? l.service->implicit_tls : l.service->offers_starttls;
      if (!possible) continue;
      m->tls_ok[mode] = &registry_.counter("postern_tls_handshakes_total",
                                           "Completed TLS handshakes, by listener and mode (implicit or starttls).",
                                           {{"listener", name}, {"mode", kModes[mode]}});
      for (size_t r = 0; r < std::size(kTlsFailureReasons); ++r)
        m->tls_failed[mode][r] = &registry_.counter(
            "postern_tls_handshake_failures_total",
            "Failed TLS handshakes, by listener, mode and reason (plaintext: the client spoke plaintext or sent a "
            "PROXY header to a TLS port).",
            {{"listener", name}, {"mode", kModes[mode]}, {"reason", std::string(kTlsFailureReasons[r])}});
    }
    by_listener_[&l] = m.get();
    listeners_.push_back(std::move(m));
  }
  spool_commit_ = &registry_.histogram(
      "postern_spool_commit_duration_seconds",
      "Time from handing a message to the spool until it is on stable storage (group commit, fdatasync).",
      kSpoolCommitBuckets);
  dnsbl_hits_ =
      &registry_.counter("postern_dnsbl_hits_total", "DNSBL listing answers (one per zone that lists a client).");
  for (int listed = 0; listed < 2; ++listed)
    dnsbl_lookups_[listed] = &registry_.counter(
        "postern_dnsbl_lookups_total", "DNSBL checks of a client address, by result (listed in any zone or not).",
        {{"result", listed ? "listed" : "clean"}});
  registry_.collector(
      "postern_events_total",
      "Named events: every rejection and diagnostic, by the name it carries as counter= in the logs.", Type::kCounter,
      [this](Sink& s) {
        for (size_t i = 0; i < kEventCount; ++i)
          s.sample({{"event", std::string(kEventNames[i])}}, double(events_.value(EventId::fromIndex(i))));
      });
  registry_.collector("postern_smtp_auth_failures_total", "Failed SMTP AUTH attempts (wrong user or password).",
                      Type::kCounter,
                      [this](Sink& s) { s.sample({}, double(events_.value(EventId("smtp.auth_failed")))); });
  registry_.collector("postern_messages_accepted_total", "Messages accepted (250 after DATA/BDAT LAST: on disk).",
                      Type::kCounter,
                      [this](Sink& s) { s.sample({}, double(events_.value(EventId("smtp.accepted")))); });
  registry_.collector("postern_ready", "1 while /readyz answers 200 (started, not stopping).", Type::kGauge,
                      [this](Sink& s) { s.sample({}, ready() ? 1 : 0); });
}

}  // namespace postern::metrics
