// What an SMTP session needs from the rest of the server, handed in by app/ (wiring only).
#pragma once

#include <asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "util/counters.h"
#include "util/ip.h"

namespace postern::directory {
class DirectoryService;
}
namespace postern::spool {
class Spool;
}
namespace postern::queue {
class Queue;
}
namespace postern::tls {
class CertStore;
}
namespace postern::metrics {
class ServerMetrics;
struct ListenerMetrics;
}
namespace postern::protect {
class Greylist;
class Protector;
class Dnsbl;
}

namespace postern::delivery {
class QuotaUsage;
class Srs;
}

namespace postern::dkim {
class KeyStore;
}
namespace postern::auth {
class Verifier;
}

namespace postern::smtp {

struct ServerContext {
  const config::Config& config;
  directory::DirectoryService& directory;
  spool::Spool& spool;
  queue::Queue& queue;              // committed messages go here for delivery
  tls::CertStore* certs;            // null without [tls]
  asio::thread_pool& cpu_pool;      // password hashing and other CPU-heavy work
  Counters& counters;               // named events (the same as metrics.events())
  metrics::ServerMetrics& metrics;
  std::atomic<uint64_t>& next_seq;  // per-process message counter (queue ids, Maildir names)
  std::atomic<bool>& shutting_down;
  protect::Protector& protector;
  protect::Dnsbl* dnsbl;            // null without [protect.dnsbl] zones
  protect::Greylist* greylist = nullptr;   // null unless [protect.greylist] enabled
  dkim::KeyStore* dkim = nullptr;   // signing keys; null: nothing is signed
  delivery::QuotaUsage* quota_usage = nullptr;   // mailbox usage; null: quotas are not checked at RCPT
  auth::Verifier* verifier = nullptr;   // null unless [verify] enabled: SPF/DKIM/DMARC/ARC of unauthenticated mail
  const delivery::Srs* srs = nullptr;   // null unless [srs] enabled: RCPT to SRS addresses is refused as unknown
};

// Who is on the other end. After a PROXY header `client` is the real client and `peer`
// the proxy; without one they are the same.
struct ConnectionInfo {
  uint64_t id = 0;
  const config::Listener* listener = nullptr;
  Endpoint peer;       // the TCP peer
  Endpoint client;     // the real client
  Endpoint local;
  bool proxied = false;
  metrics::ListenerMetrics* metrics = nullptr;   // the listener's series; null in tests
};

}  // namespace postern::smtp
