// Remote delivery: the recipients of a message that live elsewhere are sent over SMTP to
// their destination (the MX hosts of their domain, or a relay host from a [[route]]).
//
// Destinations: each has a queue of waiting transactions (one message, up to
// recipients_per_transaction recipients of it), a concurrency window that starts at
// initial_concurrency, grows by one with each delivered transaction up to
// destination_concurrency and shrinks when connections fail, and connections that are kept
// for the next transaction to the same destination (reuse) for a short idle time. A
// destination whose every host failed is marked dead for a while: its transactions are
// deferred at once instead of each one waiting for the same timeouts.
//
// MX delivery (RFC 5321 §5.1): MX hosts by preference (random among equals), the domain's
// own A/AAAA when it has no MX (implicit MX), a null MX (RFC 7505) or a missing domain is a
// permanent failure; every address of a host is tried before the next host, at most
// kMaxAddresses in all. A 4xx/5xx greeting or a failed connection moves on to the next
// address; a reply to MAIL/RCPT/DATA decides for the recipients it concerns.
//
// MTA-STS (RFC 8461 §5): before the MX hosts of a domain are tried, its policy is looked up
// (cached). Under `enforce` only the MX hosts the policy names are used and each must present a
// certificate valid for its name (STARTTLS required); no usable host is a temporary failure.
// Under `testing` a mismatch is logged and delivery goes on as without a policy.
//
// DANE (RFC 7672 §2.2), at tls "may" and "dane": when the MX answer and a host's address
// answers are authenticated (dns::Resolver::trustsAd), the host's TLSA records are looked up;
// usable validated records make STARTTLS with a matching certificate required for that host
// (a failure moves on to the next host, never to plaintext); a failed TLSA lookup skips the
// host as a temporary failure; anything else is plain opportunistic TLS.
//
// Threads: SMTP runs on one event-loop thread of its own; bodies are read from the spool and
// outcomes reported to the queue on a separate thread, so neither disk reads nor the
// queue's bookkeeping ever stall a conversation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "delivery/deliverer.h"
#include "delivery/mta_sts.h"
#include "delivery/route.h"
#include "delivery/srs.h"
#include "dns/resolver.h"
#include "net/asio.h"
#include "smtp/client/client.h"
#include "spool/spool.h"
#include "util/counters.h"

namespace postern::delivery {

inline constexpr size_t kMaxAddresses = 5;   // addresses tried per delivery attempt (all MX hosts together)
// Messages in the remote deliverer at once (their bodies are in memory): submit() waits
// beyond this, which holds the queue's dispatching back instead of filling memory when a
// restart finds a large backlog due at once.
inline constexpr size_t kMaxInFlightMessages = 2000;
// A destination whose every host failed is skipped for [queue] retry_min, at most this long.
inline constexpr std::chrono::minutes kMaxDeadTime{5};

struct RemoteOptions {
  std::string hostname;                                 // EHLO name; MX hosts equal to it are loops
  uint16_t remote_port = 25;
  unsigned destination_concurrency = 20;
  unsigned initial_concurrency = 5;
  unsigned recipients_per_transaction = 50;
  std::vector<config::Route> routes;
  // MTA-STS (RFC 8461): recipient domains' policies honoured on MX routes (not tls = none).
  bool mta_sts = true;
  std::string mta_sts_cache;                            // cache file; empty: memory only
  uint16_t mta_sts_port = 443;
  std::string ca_file;                                  // extra CA bundle for MX certificates and policy fetches
  std::chrono::milliseconds idle_reuse{5000};           // an idle connection waits this long for more mail
  std::chrono::milliseconds dead_time{60'000};          // a destination whose every host failed is skipped this long
  smtp::client::ClientTimeouts timeouts;
  // SRS (delivery/srs.h): when set, a recipient that an alias forwarded off-site (address !=
  // mailbox) gets the rewritten sender, unless the sender is null, in a local domain
  // (is_local_domain) or in srs_exclude_domains (lower case).
  std::shared_ptr<const Srs> srs;
  std::vector<std::string> srs_exclude_domains;
  std::function<bool(std::string_view domain)> is_local_domain;   // REQUIRES: thread-safe
};

struct RemoteStats {
  uint64_t transactions = 0;     // transactions attempted
  uint64_t connections = 0;      // connections opened (successful greetings)
  uint64_t reused = 0;           // transactions on a connection that had carried one before
  uint64_t delivered = 0;        // recipients
  uint64_t deferred = 0;
  uint64_t failed = 0;           // permanent failures
  uint64_t skipped_dead = 0;     // transactions deferred because their destination was dead
  uint64_t tls = 0;              // transactions over TLS
};

class RemoteDeliverer {
 public:
  using ReportFn = std::function<void(Report)>;
  // Relay credentials: "user:password" read from the route's auth_file (through the
  // privileged reader in the server).
  using ReadFile = std::function<Result<std::string>(const std::string& path)>;

  // REQUIRES: `spool`, `resolver` and `counters` (may be null) outlive *this.
  RemoteDeliverer(spool::Spool& spool, dns::Resolver& resolver, RemoteOptions options, ReportFn report,
                  Counters* counters);
  ~RemoteDeliverer();
  // Loads credentials and TLS contexts. Errors name the file.
  Status init(const ReadFile& read);

  // The remote recipients of one message (job.recipients); reported once, all together.
  // Blocks while kMaxInFlightMessages are under way (until one is reported, or stop()).
  void submit(Job job);
  // Waits until every submitted job has been reported.
  void drain();
  // Drops connections and transactions under way without reporting them (their recipients
  // stay pending in the spool and are tried again at the next start). Idempotent.
  void stop();
  RemoteStats stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace postern::delivery
