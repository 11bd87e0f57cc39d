// Named event counters: every rejection and every diagnostic increments one (DESIGN.md,
// "Every rejection increments a named counter"), and the same name appears as `counter=` in
// its log line and as the `event` label of postern_events_total on /metrics.
//
// The set of names is fixed at compile time (kEventNames). An `EventId` built from a string
// literal is resolved to its index by the compiler (a misspelt name does not compile), so
// `counters.inc("smtp.accepted")` is one relaxed atomic add on a fixed array: no lookup, no
// lock. Names only known at run time go through find(), a lock-free search of the same table.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace postern {

// Every event name, sorted (checked at compile time below). Add new names here.
inline constexpr std::string_view kEventNames[] = {
    "delivery.over_quota",
    "dkim.sign_failed",
    "dkim.signed",
    "greylist.auto_allowed",
    "greylist.deferred",
    "greylist.file_bad_line",
    "greylist.passed",
    "milter.discard",
    "milter.quarantine",
    "milter.reject",
    "milter.tempfail",
    "milter.unavailable",
    "mta_sts.cache_unreadable",
    "mta_sts.cache_write_failed",
    "mta_sts.fetch_failed",
    "mta_sts.fetched",
    "mta_sts.record_invalid",
    "mta_sts.stale_kept",
    "net.max_connections",
    "net.peer_gone",
    "protect.banned_connection",
    "protect.bans",
    "protect.bans_file_bad_line",
    "protect.connection_rate",
    "protect.offense.auth_failures",
    "protect.offense.early_talkers",
    "protect.offense.protocol_errors",
    "protect.offense.relay_attempts",
    "protect.offense.unknown_recipients",
    "protect.too_many_connections",
    "proxy.accepted",
    "proxy.header_missing",
    "proxy.header_timeout",
    "proxy.local",
    "proxy.malformed",
    "proxy.unexpected_header",
    "proxy.unknown_address",
    "proxy.untrusted_header",
    "proxy.untrusted_peer",
    "remote.connect_failed",
    "remote.dane_failed",
    "remote.dane_tlsa_tempfail",
    "remote.dane_verified",
    "remote.deferred",
    "remote.delivered",
    "remote.failed",
    "remote.skipped_dead",
    "remote.tls",
    "smtp.accepted",
    "smtp.alias_loop",
    "smtp.auth_attempts_exceeded",
    "smtp.auth_authzid",
    "smtp.auth_bad_base64",
    "smtp.auth_cancelled",
    "smtp.auth_failed",
    "smtp.auth_line_too_long",
    "smtp.auth_malformed",
    "smtp.auth_mechanism",
    "smtp.auth_ok",
    "smtp.auth_required",
    "smtp.auth_without_tls",
    "smtp.bad_helo",
    "smtp.bad_mailbox_name",
    "smtp.bad_mailbox_target",
    "smtp.bad_sequence",
    "smtp.bare_newline_command",
    "smtp.bare_newline_data",
    "smtp.bdat_after_error",
    "smtp.dmarc_rejected",
    "smtp.dnsbl",
    "smtp.dnsbl_rejected",
    "smtp.early_talker",
    "smtp.expn",
    "smtp.line_too_long",
    "smtp.no_valid_recipients",
    "smtp.nul_in_command",
    "smtp.nul_in_data",
    "smtp.over_quota",
    "smtp.relay_denied",
    "smtp.sender_denied",
    "smtp.size_exceeded",
    "smtp.spf_rejected",
    "smtp.spool_failed",
    "smtp.srs_bad_hash",
    "smtp.srs_expired",
    "smtp.srs_malformed",
    "smtp.starttls_pipelined_discarded",
    "smtp.starttls_unavailable",
    "smtp.syntax_error",
    "smtp.timeout",
    "smtp.too_many_errors",
    "smtp.too_many_recipients",
    "smtp.unknown_command",
    "smtp.unknown_recipient",
    "smtp.user_message_limit",
    "smtp.user_recipient_limit",
    "smtp.utf8_without_smtputf8",
    "srs.reversed",
    "srs.rewritten",
    "tls.handshake_failed",
    "tls.reload_failed",
    "verify.checked",
    "verify.dmarc_quarantined",
    "verify.junk",
    "verify.spf_timeout",
};
inline constexpr size_t kEventCount = std::size(kEventNames);
static_assert(std::is_sorted(std::begin(kEventNames), std::end(kEventNames)), "keep kEventNames sorted");

namespace detail {
// Reaching the end is not a constant expression: an unknown literal fails to compile.
consteval size_t eventIndex(std::string_view name) {
  for (size_t i = 0; i < kEventCount; ++i)
    if (kEventNames[i] == name) return i;
  throw "unknown event name: add it to kEventNames in util/counters.h";
}
}  // namespace detail

// One entry of kEventNames, by index.
class EventId {
 public:
  // From a literal, resolved at compile time.
  consteval EventId(const char* name) : index_(detail::eventIndex(name)) {}  // NOLINT: implicit on purpose
  static constexpr EventId fromIndex(size_t i) { return EventId(i, 0); }
  constexpr size_t index() const { return index_; }
  constexpr std::string_view name() const { return kEventNames[index_]; }
  friend constexpr bool operator==(EventId a, EventId b) { return a.index_ == b.index_; }

 private:
  constexpr EventId(size_t i, int) : index_(i) {}
  size_t index_;
};

class Counters {
 public:
  // A name known only at run time; nullopt when it is not in kEventNames. Lock-free.
  static std::optional<EventId> find(std::string_view name) {
    auto it = std::lower_bound(std::begin(kEventNames), std::end(kEventNames), name);
    if (it == std::end(kEventNames) || *it != name) return std::nullopt;
    return EventId::fromIndex(size_t(it - std::begin(kEventNames)));
  }

  void inc(EventId e, uint64_t by = 1) { values_[e.index()].fetch_add(by, std::memory_order_relaxed); }
  uint64_t value(EventId e) const { return values_[e.index()].load(std::memory_order_relaxed); }
  // Runtime name; 0 for an unknown one.
  uint64_t valueByName(std::string_view name) const {
    auto e = find(name);
    return e ? value(*e) : 0;
  }

 private:
  std::array<std::atomic<uint64_t>, kEventCount> values_{};
};

}  // namespace postern
