// The validated, immutable configuration snapshot (DESIGN.md "Configuration (contract)").
// Loading never ignores a setting: unknown keys, wrong types, bad addresses and CIDRs,
// unreadable files and duplicate listen addresses are errors with FILE:LINE:COL.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/services.h"
#include "util/ip.h"

namespace postern::config {

enum class ProxyMode : uint8_t { kOff, kRequired, kMixed };
std::string_view proxyModeName(ProxyMode m);

enum class LogFormat : uint8_t { kText, kJson };
enum class BareNewlinePolicy : uint8_t { kReject, kNormalize };

// Named defaults: every limit has one, documented in docs/configuration.md.
inline constexpr uint64_t kDefaultMaxMessageSize = 25ull * 1024 * 1024;   // 25 MiB
inline constexpr unsigned kDefaultMaxRecipients = 100;                    // RFC 5321 §4.5.3.1.8 minimum
inline constexpr unsigned kDefaultMaxLineLength = 1000;                   // RFC 5321 §4.5.3.1.6
inline constexpr uint64_t kDefaultCommandTimeoutMs = 5 * 60 * 1000;       // RFC 5321 §4.5.3.2.7
inline constexpr uint64_t kDefaultDataTimeoutMs = 3 * 60 * 1000;          // RFC 5321 §4.5.3.2.5
inline constexpr uint64_t kDefaultTransactionTimeoutMs = 30 * 60 * 1000;
inline constexpr uint64_t kDefaultHeaderTimeoutMs = 5000;
inline constexpr uint64_t kDefaultShutdownTimeoutMs = 30'000;
inline constexpr unsigned kDefaultMaxErrors = 10;
inline constexpr unsigned kDefaultMaxConnections = 20'000;
inline constexpr uint64_t kMaxCommitWaitMs = 100;

struct Position {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string toString() const;  // "FILE:LINE:COL"
};

struct Diagnostic {
  enum class Severity { kWarning, kError, kNote };
  Severity severity;
  Position pos;
  std::string message;
  std::string toString() const;  // "FILE:LINE:COL: error: message"
};

struct Listener {
  std::string name;             // "smtp", "submissions", ... (canonical service name)
  const ServiceInfo* service = nullptr;
  std::string service_as_written;
  Endpoint address;
  ProxyMode proxy = ProxyMode::kOff;
  std::vector<Cidr> trusted_networks;   // effective: the listener's own list or the global one
  bool trusted_networks_overridden = false;
  Position pos;
};

struct CertificatePair {
  std::string cert;
  std::string key;
  Position pos;
};

// [[tls.traefik]]: certificates taken from Traefik's acme.json as Traefik renews them.
struct TraefikSource {
  std::string file;
  std::string resolver;                // empty: any resolver in the file
  std::vector<std::string> names;      // the certificate must cover all; default: hostname
  Position pos;
};

struct Tls {
  bool configured = false;
  CertificatePair default_cert;        // cert empty: the first Traefik source is the default
  std::vector<CertificatePair> extra;
  std::vector<TraefikSource> traefik;
  std::string min_version = "1.2";   // "1.2" | "1.3"
  std::string ciphers;               // TLS 1.2 cipher list; empty: the built-in intermediate set
  std::string ciphersuites;          // TLS 1.3 suites; empty: OpenSSL's defaults
};

struct Smtp {
  uint64_t max_message_size = kDefaultMaxMessageSize;
  unsigned max_recipients = kDefaultMaxRecipients;
  unsigned max_line_length = kDefaultMaxLineLength;
  uint64_t command_timeout_ms = kDefaultCommandTimeoutMs;
  uint64_t data_timeout_ms = kDefaultDataTimeoutMs;
  uint64_t transaction_timeout_ms = kDefaultTransactionTimeoutMs;
  BareNewlinePolicy bare_newlines = BareNewlinePolicy::kReject;
  uint64_t greeting_delay_ms = 0;
  unsigned max_errors = kDefaultMaxErrors;
};

struct Server {
  // Started as root, the daemon binds its listeners and then serves as this user (and group;
  // empty: the user's primary group). "root" keeps root, and only when written explicitly.
  std::string user = "postern";
  std::string group;
  unsigned threads = 0;                    // 0: one per core
  uint64_t shutdown_timeout_ms = kDefaultShutdownTimeoutMs;
  unsigned max_connections = kDefaultMaxConnections;
};

// Group commit of the spool (spool.h): how long a batch may wait for other sessions' commits.
struct SpoolSettings {
  uint64_t commit_wait_ms = 1;   // 0: no window (batches still form during each fdatasync)
  unsigned commit_batch = 128;   // commits that close the window early
  uint64_t segment_size = 64ull * 1024 * 1024;   // roll to a new segment file past this
};

// Compaction writes a queued message again as one spool record (spool/record.h allows
// 64 MiB a record): messages are capped below that.
inline constexpr uint64_t kMaxMessageSizeLimit = 60ull * 1024 * 1024;

// [queue]: the delivery schedule (queue/queue.h).
inline constexpr uint64_t kMinSegmentSize = 64 * 1024;
inline constexpr uint64_t kMaxSegmentSize = 1024ull * 1024 * 1024;
struct QueueSettings {
  uint64_t lifetime_ms = 5ull * 24 * 3600 * 1000;   // then the sender is notified
  uint64_t retry_min_ms = 5 * 60 * 1000;            // first retry; doubles up to retry_max
  uint64_t retry_max_ms = 3600 * 1000;
  uint64_t delay_warning_ms = 4 * 3600 * 1000;      // then a "delayed" DSN is sent once; 0: never
  uint16_t remote_port = 25;                        // port of MX hosts (tests, unusual networks)
  unsigned destination_concurrency = 20;            // connections per destination at most
  unsigned initial_concurrency = 5;                 // to start with; grows on success
  unsigned recipients_per_transaction = 50;         // recipients of one message in one transaction
  bool mta_sts = true;                              // honour recipient domains' MTA-STS policies (RFC 8461)
  std::string ca_file;                              // extra CA bundle for MX certificates and MTA-STS fetches
  uint16_t mta_sts_port = 443;                      // port of policy hosts (tests only)
};

// [[route]] (delivery/route.h): where mail to remote recipients goes. First match wins;
// no match: the MX hosts of the recipient's domain.
enum class RouteTls : uint8_t {
  kNone,       // never TLS
  kMay,        // STARTTLS when offered (MX default)
  kEncrypt,    // STARTTLS required, certificate not checked (MX)
  kVerify,     // STARTTLS required, certificate checked against the host name
  kStartTls,   // relay: STARTTLS required and verified (alias of kVerify for relays)
  kImplicit,   // relay: TLS from the first byte, verified
  kDane,       // MX: as kMay, DANE (RFC 7672) where validated TLSA records exist (kMay does it too
               // when DNS is validated); says DANE is meant, so a resolver that cannot validate is logged
};
const char* routeTlsName(RouteTls t);
struct Route {
  std::vector<std::string> recipient_domains;   // lower case; empty and sender_domains empty: default route
  std::vector<std::string> sender_domains;
  std::string relay_host;                        // empty: MX delivery
  uint16_t relay_port = 25;
  RouteTls tls = RouteTls::kMay;
  bool tls_given = false;
  std::string auth_file;                         // "user:password" on one line; empty: no AUTH
  std::string ca_file;                           // extra CA bundle for checking the relay's certificate
  Position pos;
  bool matchesAll() const { return recipient_domains.empty() && sender_domains.empty(); }
};

struct ProxyProtocol {
  std::vector<Cidr> trusted_networks;
  uint64_t header_timeout_ms = kDefaultHeaderTimeoutMs;
  bool section_present = false;
  Position pos;
};

// [protect]: limits and auto-ban, keyed by the real client address (after PROXY).
struct BanRule {
  unsigned threshold;        // offences within `window` that trigger a ban; 0 disables
};
struct DnsblZone {
  std::string name;                  // "zen.spamhaus.org"
  bool reject = true;                // action = "reject" | "score"
  int score = 1;                     // added to the total when listed (action = "score")
  std::vector<IpAddress> codes;      // answers that count as listed; empty: any 127.0.0.0/8 but 127.255.255.x
  Position pos;
};
struct Dnsbl {
  std::vector<DnsblZone> zones;
  int threshold = 1;                 // score needed to reject (score zones)
  std::optional<Endpoint> resolver;  // default: the shared resolver ([dns]); set: one of its own
  uint64_t timeout_ms = 2000;
};
// [protect.greylist] (protect/greylist.h): off unless `enabled = true`.
struct Greylist {
  bool enabled = false;
  uint64_t delay_ms = 5 * 60 * 1000;                        // a retry sooner is deferred again
  uint64_t retry_window_ms = 24 * 3600 * 1000;              // an unretried first attempt is forgotten
  uint64_t pass_lifetime_ms = 36ull * 24 * 3600 * 1000;     // a passed triplet unused this long is forgotten
  unsigned ipv4_prefix = 24;                                // clients are grouped by network
  unsigned ipv6_prefix = 64;
  unsigned auto_allow = 5;                                  // passed triplets that exempt a network; 0: never
  unsigned max_entries = 100'000;                           // least recently seen forgotten beyond this
};
struct Protect {
  std::vector<Cidr> allow_networks;            // never limited or banned; default: loopback
  uint64_t window_ms = 10 * 60 * 1000;
  BanRule auth_failures{5};
  BanRule relay_attempts{10};
  BanRule unknown_recipients{20};
  BanRule protocol_errors{30};
  BanRule early_talkers{3};
  uint64_t ban_time_ms = 60 * 60 * 1000;       // first ban; doubles for repeat offenders
  uint64_t max_ban_time_ms = 7 * 24 * 60 * 60 * 1000ull;
  unsigned ipv6_prefix = 64;                   // IPv6 clients are counted and banned per /64
  unsigned max_connections_per_client = 20;
  unsigned max_connection_rate = 60;           // new connections per client per minute
  unsigned max_messages_per_user = 1000;       // per authenticated user per hour
  unsigned max_recipients_per_user = 5000;     // per authenticated user per hour
  unsigned max_auth_attempts = 3;              // per connection
  Dnsbl dnsbl;
  Greylist greylist;
};

// [dkim]: signing keys (dkim/key_store.h for the folder layouts).
struct Dkim {
  std::string keys_dir;      // default: "dkim" beside the configuration file
};

// [srs]: Sender Rewriting Scheme for mail that aliases forward off-site (delivery/srs.h).
inline constexpr uint32_t kDefaultSrsMaxAgeDays = 21;
inline constexpr uint32_t kMaxSrsMaxAgeDays = 1023;   // the SRS timestamp wraps after 1024 days
struct Srs {
  bool enabled = false;
  std::string domain;                        // default: hostname
  std::string secret_file;                   // default: <data_dir>/state/srs-secret (created if missing)
  uint32_t max_age_days = kDefaultSrsMaxAgeDays;   // bounces to older rewritten addresses are refused
  std::vector<std::string> exclude_domains;  // senders in these domains are never rewritten (lower case)
};

// [dns]: the resolver shared by outbound routing and, later, SPF/DKIM/DMARC/DANE (dns/resolver.h).
inline constexpr uint64_t kDefaultDnsTimeoutMs = 5000;
inline constexpr uint64_t kMaxDnsTimeoutMs = 60'000;
inline constexpr unsigned kDefaultDnsCacheSize = 10'000;
inline constexpr unsigned kMaxDnsCacheSize = 10'000'000;
inline constexpr uint16_t kDefaultDnsPort = 53;
struct Dns {
  std::vector<Endpoint> servers;      // empty: the system resolver (/etc/resolv.conf)
  uint64_t timeout_ms = kDefaultDnsTimeoutMs;   // per lookup, retries included
  unsigned cache_size = kDefaultDnsCacheSize;   // entries; least recently used dropped beyond this
};

// [verify]: inbound sender authentication (auth/): SPF, DKIM, DMARC, ARC, reported in one
// Authentication-Results header (RFC 8601). Applies to mail from clients that did not
// authenticate. Default: everything checked and recorded, nothing refused.
inline constexpr unsigned kMaxDkimSignatures = 50;           // [verify] dkim_max_signatures
inline constexpr uint64_t kMinMilterTimeoutMs = 100;           // [[milter]] *_timeout
inline constexpr uint64_t kMaxMilterTimeoutMs = 3'600'000;
inline constexpr const char* kMilterStageNames[] = {"connect", "helo", "mail", "rcpt", "header", "body"};   // bit i = 1 << i
enum class SpfResultSet : uint8_t { kFail = 1, kSoftFail = 2, kPermError = 4, kTempError = 8 };
struct Verify {
  bool enabled = true;
  std::string authserv_id;          // default: hostname
  bool spf = true;
  unsigned spf_reject = 0;          // SpfResultSet bits refused at MAIL FROM ("fail" -> 550 5.7.23, ...)
  bool dkim = true;
  unsigned dkim_max_signatures = 5; // signatures checked per message; the rest are reported as not checked
  bool dkim_honour_length = true;   // l= tag: "honour" (hash only l= octets) | "ignore" (hash the whole body)
  bool dmarc = true;
  bool dmarc_enforce = false;       // apply p=reject (550 5.7.1) and p=quarantine (Junk); false: record only
  bool arc = true;
  std::string junk_header;          // "X-Spam: Yes": a message carrying this field (after milters) goes to Junk
  Position pos;
};

// [[milter]]: Sendmail milter protocol v6 filters (milter/), e.g. rspamd's proxy worker.
enum class MilterDefault : uint8_t { kTempFail, kAccept };
enum MilterStage : unsigned {   // bit set of the stages sent to the milter
  kMilterConnect = 1, kMilterHelo = 2, kMilterMail = 4, kMilterRcpt = 8, kMilterHeader = 16, kMilterBody = 32,
  kMilterAll = 63,
};
struct Milter {
  std::string name;                  // for logs: the address as written
  std::optional<Endpoint> tcp;       // "127.0.0.1:11332"
  std::string unix_path;             // "unix:/run/rspamd/milter.sock"
  MilterDefault default_action = MilterDefault::kTempFail;
  uint64_t connect_timeout_ms = 5'000;
  uint64_t command_timeout_ms = 30'000;   // each reply
  uint64_t message_timeout_ms = 120'000;  // end of message: the whole body sent and the final reply
  unsigned stages = kMilterAll;           // end-of-message is always sent
  std::vector<std::string> services;      // listener services it applies to; empty: every SMTP listener
  Position pos;
};

struct Config {
  std::string path;          // the file this came from
  std::string base_dir;      // relative paths resolve against this
  std::string hostname;
  std::string data_dir;
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
  std::string accounts_path;
  std::string aliases_path;
  std::string quotas_path;        // [directory] quotas (dovecot-quotas.cf); empty: none
  uint64_t default_quota = 0;     // [directory] default_quota in bytes; 0: no limit
  std::string mailbox_root;
  Tls tls;
  ProxyProtocol proxy;
  Smtp smtp;
  Server server;
  SpoolSettings spool;
  QueueSettings queue;
  Protect protect;
  Dkim dkim;
  Srs srs;
  Verify verify;
  std::vector<Milter> milters;
  std::vector<Route> routes;
  Dns dns;
  std::vector<Listener> listeners;

  std::string spoolDir() const { return data_dir + "/spool"; }
  std::string stateDir() const { return data_dir + "/state"; }
};

struct LoadResult {
  std::shared_ptr<const Config> config;   // null when there is any error
  std::vector<Diagnostic> diagnostics;    // errors, warnings and notes, in file order
  bool hasErrors() const;
};

// Reads and validates `path`. Never throws.
LoadResult load(const std::string& path);
// Same, from text already in memory (`path` is used for messages and relative paths).
LoadResult loadFromString(std::string_view text, const std::string& path);

// `postern config show`: every listener's effective settings, defaults included.
std::string describe(const Config& c);

}  // namespace postern::config
