// The shared resolver: c-ares for transport only, message.h for reading answers.
//
// Threading: requests are closures appended to `incoming_` under `mu_`, with a byte written
// to a self-pipe. The resolver thread owns the c-ares channel (not thread-safe in c-ares
// 1.18), the in-flight queries and the sockets: it polls the self-pipe and the sockets c-ares
// asks for (ARES_OPT_SOCK_STATE_CB; poll, not select, because a busy server's descriptors
// exceed FD_SETSIZE), sleeping until the next c-ares retry or the earliest query deadline. The cache has its own mutex because
// cache hits are answered inline on the caller's thread.
//
// One query per (name, type): identical lookups in flight share it. Each query has a
// deadline `timeout` after it was sent; c-ares' own retries fit inside it, and an answer
// arriving later is dropped. An answer whose chain of CNAMEs ends without the wanted type
// makes a new query for the chain's last name (at most kMaxCnameQueries deep).
//
// DNSSEC: nothing here validates. Queries are built here (ares_create_query) with the AD bit
// set (RFC 6840 §5.7: a validating resolver then reports whether the answer is secure) and
// sent with ares_send; the AD bit of the reply becomes Records::authenticated, cached with
// the records, when `trust_ad_` (every server is loopback, checked once at init from the
// channel's own server list, so /etc/resolv.conf counts too). An answer reached through a
// CNAME is authenticated only when every reply on the way was. A libunbound backend (own
// validation, ub_result->secure) could replace the c-ares channel behind the same interface.
#include "dns/resolver.h"

#include <ares.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "log/log.h"
#include "util/thread_name.h"

namespace postern::dns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kThreadName = "postern-dns";   // at most 15 characters (pthread)
constexpr int kTries = 2;                            // c-ares attempts per query within the timeout
constexpr size_t kMaxCnameHops = 16;                 // CNAMEs followed inside one answer
constexpr int kMaxCnameQueries = 8;                  // new queries for the target of a CNAME chain
constexpr size_t kMaxRecordsKept = 256;              // records of one RRset kept (a real one has a few)
// Answers to a burst of lookups (DNSBL checks of many clients) arrive together on one UDP
// socket; the default buffer drops some of a few hundred (measured), and each drop costs a
// retry. The kernel caps it at rmem_max.
constexpr int kReceiveBufferBytes = 1 << 20;
constexpr size_t kFlags2Offset = 3;                  // RFC 1035 §4.1.1: RA, Z, AD, CD, RCODE
constexpr uint8_t kAdBit = 0x20;                     // RFC 4035 §3.2.3 (in the byte above)
constexpr uint8_t kLoopbackV4FirstOctet = 127;       // 127.0.0.0/8 (RFC 1122 §3.2.1.3)

const uint16_t kTypeA = static_cast<uint16_t>(RrType::kA);
const uint16_t kTypeAaaa = static_cast<uint16_t>(RrType::kAaaa);
const uint16_t kTypeMx = static_cast<uint16_t>(RrType::kMx);
const uint16_t kTypeTxt = static_cast<uint16_t>(RrType::kTxt);
const uint16_t kTypeTlsa = static_cast<uint16_t>(RrType::kTlsa);
const uint16_t kTypeCname = static_cast<uint16_t>(RrType::kCname);
const uint16_t kTypeSoa = static_cast<uint16_t>(RrType::kSoa);
const uint16_t kTypePtr = static_cast<uint16_t>(RrType::kPtr);

// A short, stable reason for a transport failure.
std::string reasonOf(int status) {
  switch (status) {
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ESERVFAIL: return "SERVFAIL";
    case ARES_EREFUSED: return "REFUSED";
    case ARES_ECONNREFUSED: return "connection refused";
    case ARES_EFORMERR: return "FORMERR";
    case ARES_ENOTIMP: return "NOTIMP";
    case ARES_EBADRESP: return "bad response";
    case ARES_EBADNAME: return "bad name";
    case ARES_ENOMEM: return "no memory";
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return "shutting down";
    default: return fmt::format("c-ares: {}", ares_strerror(status));
  }
}

int clampMs(int64_t ms) { return static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX)); }

// The result of one (name, type) lookup, as cached.
struct Records {
  Outcome outcome = Outcome::kTempFail;
  std::string error;
  uint32_t ttl = 0;                    // seconds it may be cached; 0: not at all
  std::vector<MxHost> mx;
  std::vector<IpAddress> addresses;    // A or AAAA
  std::vector<std::string> txt;
  std::vector<TlsaData> tlsa;
  std::vector<std::string> names;      // PTR
  bool authenticated = false;          // the AD bit, believed (see trust_ad_)
};

Records failure(Outcome o, std::string error) {
  Records r;
  r.outcome = o;
  r.error = std::move(error);
  return r;
}

using Key = std::pair<std::string, uint16_t>;   // lower-case name, type
struct KeyHash {
  size_t operator()(const Key& k) const { return std::hash<std::string>()(k.first) * 31 + k.second; }
};

// LRU of answers by (name, type), entries dropped at their expiry.
class Cache {
 public:
  explicit Cache(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

  std::optional<Records> get(const Key& key, Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    Entry& e = *it->second;
    if (e.expiry <= now) {
      lru_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    Records r = e.records;
    // What is left of the TTL, rounded up so that an entry never lives longer downstream.
    r.ttl = static_cast<uint32_t>(std::chrono::ceil<std::chrono::seconds>(e.expiry - now).count());
    return r;
  }

  void put(const Key& key, const Records& r, Clock::time_point expiry) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
    lru_.push_front(Entry{key, r, expiry});
    index_.emplace(key, lru_.begin());
    while (lru_.size() > capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
  }

  size_t size() {
    std::lock_guard lock(mu_);
    return lru_.size();
  }

 private:
  struct Entry {
    Key key;
    Records records;
    Clock::time_point expiry;
  };
  const size_t capacity_;
  std::mutex mu_;
  std::list<Entry> lru_;   // most recently used first
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
};

MxAnswer toMx(const Records& r) {
  MxAnswer a;
  a.outcome = r.outcome;
  a.error = r.error;
  a.hosts = r.mx;
  a.null_mx = r.outcome == Outcome::kOk && r.mx.size() == 1 && r.mx[0].preference == 0 && r.mx[0].host == ".";
  a.authenticated = r.authenticated;
  return a;
}

TxtAnswer toTxt(const Records& r) { return TxtAnswer{r.outcome, r.txt, r.error, r.authenticated}; }
NameAnswer toNames(const Records& r) { return NameAnswer{r.outcome, r.names, r.error, r.authenticated}; }
AddressAnswer toAddresses(const Records& r) {
  AddressAnswer a{r.outcome, r.addresses, r.error, r.authenticated};
  if (a.outcome == Outcome::kOk && a.addresses.empty()) a.outcome = Outcome::kNoData;
  return a;
}
TlsaAnswer toTlsa(const Records& r) { return TlsaAnswer{r.outcome, r.tlsa, r.error, r.authenticated}; }

// A and AAAA together: addresses if either has some; else the more telling failure.
AddressAnswer combine(const Records& v4, const Records& v6) {
  AddressAnswer a;
  a.addresses = v6.addresses;
  a.addresses.insert(a.addresses.end(), v4.addresses.begin(), v4.addresses.end());
  a.authenticated = v4.authenticated && v6.authenticated;
  if (!a.addresses.empty()) {
    a.outcome = Outcome::kOk;
  } else if (v4.outcome == Outcome::kTempFail || v6.outcome == Outcome::kTempFail) {
    a.outcome = Outcome::kTempFail;
    a.error = v4.outcome == Outcome::kTempFail ? v4.error : v6.error;
  } else if (v4.outcome == Outcome::kPermFail || v6.outcome == Outcome::kPermFail) {
    a.outcome = Outcome::kPermFail;
    a.error = v4.outcome == Outcome::kPermFail ? v4.error : v6.error;
  } else if (v4.outcome == Outcome::kNxDomain && v6.outcome == Outcome::kNxDomain) {
    a.outcome = Outcome::kNxDomain;
  } else {
    a.outcome = Outcome::kNoData;
  }
  return a;
}

// A name the resolver will query: normalized, and not the root.
std::optional<std::string> queryName(const std::string& name) {
  auto n = normalizeName(name);
  if (!n || *n == ".") return std::nullopt;
  return n;
}

}  // namespace

const char* outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kNxDomain: return "nxdomain";
    case Outcome::kNoData: return "nodata";
    case Outcome::kTempFail: return "tempfail";
    case Outcome::kPermFail: return "permfail";
  }
  return "?";
}

// The resolver thread and everything it owns. `incoming_` and `stopping_` are shared under
// `mu_`, the cache and the counters are thread-safe; the rest belongs to the thread.
class Resolver::Loop {
 public:
  using Done = std::function<void(Records)>;

  explicit Loop(ResolverOptions options) : opts_(std::move(options)), cache_(opts_.cache_entries) {}
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Status init();
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop();

  // Any thread: runs `task` on the resolver thread. While shutting down, `task` runs at once
  // (its lookups then fail with "shutting down").
  void submit(std::function<void()> task);
  // Any thread: a cached answer, counted as a hit (unless `count` is false: the caller
  // counts the hits it uses).
  std::optional<Records> cached(const std::string& name, uint16_t type, bool count = true) {
    auto r = cache_.get(Key{name, type}, Clock::now());
    if (r && count) cache_hits_.fetch_add(1, std::memory_order_relaxed);
    return r;
  }
  void countHits(uint64_t n) { cache_hits_.fetch_add(n, std::memory_order_relaxed); }
  // Resolver thread: the answer for (name, type), from the cache or the network.
  void fetch(const std::string& name, uint16_t type, int depth, Done done);
  // One (name, type) lookup: from the cache, or on the resolver thread; `convert` turns the
  // records into the caller's answer type.
  template <class Answer, class Convert>
  void one(std::string name, uint16_t type, Convert convert, std::function<void(Answer)> done) {
    if (auto r = cached(name, type)) {
      Answer a = convert(*r);
      counted(a.outcome);
      done(std::move(a));
      return;
    }
    submit([this, name = std::move(name), type, convert, done = std::move(done)]() mutable {
      fetch(name, type, 0, [this, convert, done = std::move(done)](Records r) {
        Answer a = convert(r);
        counted(a.outcome);
        done(std::move(a));
      });
    });
  }
  // Counts a result given to a caller.
  void counted(Outcome o) {
    if (o == Outcome::kTempFail) failures_.fetch_add(1, std::memory_order_relaxed);
  }
  bool trustsAd() const { return trust_ad_; }
  Stats stats() {
    Stats s;
    s.queries = queries_.load(std::memory_order_relaxed);
    s.cache_hits = cache_hits_.load(std::memory_order_relaxed);
    s.failures = failures_.load(std::memory_order_relaxed);
    s.coalesced = coalesced_.load(std::memory_order_relaxed);
    s.cache_entries = cache_.size();
    return s;
  }

 private:
  struct Inflight {
    uint64_t id = 0;
    int depth = 0;
    std::vector<Done> waiters;
  };
  // c-ares owns this until its callback, which runs exactly once (ARES_EDESTRUCTION at the end).
  struct Query {
    Loop* loop;
    Key key;
    uint64_t id;
  };
  // What one answer says about (name, type).
  struct Reading {
    Records records;
    std::string follow;        // the chain ended in a CNAME to this name: ask again
    uint32_t chain_ttl = 0;    // smallest TTL of the CNAMEs followed
    bool chain_authenticated = false;   // the reply that ended in the CNAME was authenticated
  };

  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void onAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  void run();
  bool allServersLoopback();
  void handleAnswer(const Query& q, int status, const unsigned char* abuf, int alen);
  Reading read(const Message& m, const Key& key);
  uint32_t negativeTtl(const Message& m) const;
  uint32_t capTtl(uint64_t ttl) const {
    return static_cast<uint32_t>(std::min<uint64_t>(ttl, static_cast<uint64_t>(opts_.max_ttl.count())));
  }
  void complete(const Key& key, uint64_t id, Records r);
  void expire(Clock::time_point now);
  int pollTimeoutMs(Clock::time_point now);
  void cancelAll();

  const ResolverOptions opts_;
  bool trust_ad_ = false;   // every server is loopback: the AD bit is believed (set by init)
  Cache cache_;
  std::atomic<uint64_t> queries_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> coalesced_{0};

  ares_channel channel_ = nullptr;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::thread thread_;

  std::mutex mu_;
  std::vector<std::function<void()>> incoming_;   // guarded by mu_
  bool stopping_ = false;                         // guarded by mu_
  std::atomic<bool> shutting_down_{false};        // set on the thread once it drains

  uint64_t next_id_ = 1;
  std::map<Key, Inflight> inflight_;
  std::multimap<Clock::time_point, std::pair<Key, uint64_t>> deadlines_;
  std::map<ares_socket_t, short> sockets_;
};

Resolver::Loop::~Loop() {
  stop();
  if (channel_) ares_destroy(channel_);   // only when the thread never ran
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

Status Resolver::Loop::init() {
  ares_options o{};
  o.sock_state_cb = &Loop::onSocketState;
  o.sock_state_cb_data = this;
  auto timeout_ms = std::max<int64_t>(1, opts_.timeout.count());
  o.timeout = static_cast<int>(std::clamp<int64_t>(timeout_ms / kTries, 1, INT_MAX));
  o.tries = kTries;
  // SERVFAIL and REFUSED come back as answers, read from the message itself: without
  // NOCHECKRESP c-ares 1.18 tries the next server and finally reports them as
  // ARES_ECONNREFUSED, which would send an operator looking for a firewall problem.
  o.flags = ARES_FLAG_NOCHECKRESP;
  o.socket_receive_buffer_size = kReceiveBufferBytes;
  int rc = ares_init_options(
      &channel_, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_SOCK_RCVBUF);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return Status::io(fmt::format("dns: cannot create a resolver channel: {}", ares_strerror(rc)));
  }
  if (!opts_.servers.empty()) {
    // "IP:PORT,[IPv6]:PORT": UDP, and TCP when an answer is truncated.
    std::string csv;
    for (const Endpoint& e : opts_.servers) {
      if (!csv.empty()) csv += ',';
      csv += e.toString();
    }
    rc = ares_set_servers_ports_csv(channel_, csv.c_str());
    if (rc != ARES_SUCCESS) return Status::invalid(fmt::format("dns: cannot use servers {}: {}", csv, ares_strerror(rc)));
  }
  trust_ad_ = allServersLoopback();
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Status::io(fmt::format("dns: pipe: {}", std::strerror(errno)));
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  return Status::ok();
}

// The channel's servers, as c-ares will use them ([dns] servers or /etc/resolv.conf): all
// loopback (127.0.0.0/8, ::1), and at least one.
bool Resolver::Loop::allServersLoopback() {
  ares_addr_port_node* servers = nullptr;
  if (ares_get_servers_ports(channel_, &servers) != ARES_SUCCESS) return false;
  bool all = servers != nullptr;
  for (ares_addr_port_node* n = servers; n; n = n->next) {
    if (n->family == AF_INET) {
      const auto* b = reinterpret_cast<const uint8_t*>(&n->addr.addr4);
      all = all && b[0] == kLoopbackV4FirstOctet;
    } else if (n->family == AF_INET6) {
      static const uint8_t kLoopbackV6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      all = all && std::memcmp(&n->addr.addr6, kLoopbackV6, sizeof kLoopbackV6) == 0;
    } else {
      all = false;
    }
  }
  ares_free_data(servers);
  return all;
}

void Resolver::Loop::stop() {
  if (!thread_.joinable()) return;
  assert(thread_.get_id() != std::this_thread::get_id() && "~Resolver called from a done callback");
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  char b = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_, &b, 1);
  thread_.join();
}

void Resolver::Loop::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      bool wake = incoming_.empty();   // otherwise a byte is already on its way
      incoming_.push_back(std::move(task));
      if (wake) {
        char b = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_write_, &b, 1);
      }
      return;
    }
  }
  // Only from a callback while the thread drains: fetch() fails it at once.
  task();
}

void Resolver::Loop::onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* loop = static_cast<Loop*>(data);
  if (!readable && !writable) loop->sockets_.erase(fd);
  else loop->sockets_[fd] = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
}

void Resolver::Loop::onAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  q->loop->handleAnswer(*q, status, abuf, alen);
}

void Resolver::Loop::run() {
  util::setThreadName(kThreadName);
  std::vector<pollfd> fds;
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      batch.swap(incoming_);
    }
    for (auto& task : batch) task();
    expire(Clock::now());

    fds.clear();
    fds.push_back(pollfd{wake_read_, POLLIN, 0});
    for (const auto& [fd, events] : sockets_) fds.push_back(pollfd{fd, events, 0});
    int n = ::poll(fds.data(), fds.size(), pollTimeoutMs(Clock::now()));
    if (n < 0 && errno != EINTR) {
      log::error("dns.poll_failed").kv("error", std::strerror(errno));
      continue;
    }
    if (n > 0 && fds[0].revents) {
      char buf[64];
      while (::read(wake_read_, buf, sizeof buf) > 0) {
      }
    }
    for (size_t i = 1; n > 0 && i < fds.size(); ++i) {
      short re = fds[i].revents;
      if (!re) continue;
      ares_socket_t r = (re & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t w = (re & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(channel_, r, w);
    }
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);   // retries and c-ares timeouts
  }
  cancelAll();
}

void Resolver::Loop::fetch(const std::string& name, uint16_t type, int depth, Done done) {
  if (shutting_down_.load()) {
    done(failure(Outcome::kTempFail, "shutting down"));
    return;
  }
  Key key{name, type};
  Clock::time_point now = Clock::now();
  if (auto r = cache_.get(key, now)) {
    cache_hits_.fetch_add(1, std::memory_order_relaxed);
    done(std::move(*r));
    return;
  }
  if (auto it = inflight_.find(key); it != inflight_.end()) {
    coalesced_.fetch_add(1, std::memory_order_relaxed);
    it->second.waiters.push_back(std::move(done));
    return;
  }
  uint64_t id = next_id_++;
  Inflight& f = inflight_[key];
  f.id = id;
  f.depth = depth;
  f.waiters.push_back(std::move(done));
  deadlines_.emplace(now + opts_.timeout, std::make_pair(key, id));
  queries_.fetch_add(1, std::memory_order_relaxed);
  // The callback may run inside ares_send, or just below for a name c-ares cannot encode:
  // the entry above is in place by then, and nothing here touches it afterwards.
  auto q = std::make_unique<Query>(Query{this, key, id});
  unsigned char* buf = nullptr;
  int len = 0;
  // ID 0: ares_send gives the query its own. RD set, no EDNS0 (max_udp_size 0).
  int rc = ares_create_query(name.c_str(), kClassIn, type, 0, 1, &buf, &len, 0);
  if (rc != ARES_SUCCESS) {
    onAnswer(q.release(), rc == ARES_ENOMEM ? ARES_ENOMEM : ARES_EBADNAME, 0, nullptr, 0);
    return;
  }
  // RFC 6840 §5.7: AD in a query asks a validating resolver to report the answer's status.
  buf[kFlags2Offset] |= kAdBit;
  ares_send(channel_, buf, len, &Loop::onAnswer, q.release());
  ares_free_string(buf);
}

void Resolver::Loop::handleAnswer(const Query& q, int status, const unsigned char* abuf, int alen) {
  auto it = inflight_.find(q.key);
  if (it == inflight_.end() || it->second.id != q.id) return;   // timed out already
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
    complete(q.key, q.id, failure(Outcome::kTempFail, "shutting down"));
    return;
  }
  // With ARES_FLAG_NOCHECKRESP every reply, whatever its RCODE, comes with its bytes; no
  // bytes means no reply (timeout, connection refused, ...).
  if (!abuf || alen <= 0) {
    complete(q.key, q.id,
             failure(status == ARES_EBADNAME ? Outcome::kPermFail : Outcome::kTempFail, reasonOf(status)));
    return;
  }
  auto msg = parseMessage(std::span<const uint8_t>(abuf, static_cast<size_t>(alen)));
  if (!msg) {
    log::warn("dns.bad_response").kv("name", q.key.first).kv("type", rrTypeName(q.key.second))
        .kv("error", msg.status().message());
    complete(q.key, q.id, failure(Outcome::kTempFail, "bad response: " + msg.status().message()));
    return;
  }
  Reading rd = read(*msg, q.key);
  if (rd.follow.empty()) {
    complete(q.key, q.id, std::move(rd.records));
    return;
  }
  int depth = it->second.depth + 1;
  if (depth > kMaxCnameQueries) {
    complete(q.key, q.id, failure(Outcome::kTempFail, "CNAME chain too long"));
    return;
  }
  // The answer for the chain's target is this name's answer; cached no longer than the
  // CNAMEs that led to it.
  uint32_t chain_ttl = rd.chain_ttl;
  bool chain_authenticated = rd.chain_authenticated;
  fetch(rd.follow, q.key.second, depth, [this, key = q.key, id = q.id, chain_ttl, chain_authenticated](Records r) {
    r.ttl = std::min(r.ttl, chain_ttl);
    r.authenticated = r.authenticated && chain_authenticated;
    complete(key, id, std::move(r));
  });
}

Resolver::Loop::Reading Resolver::Loop::read(const Message& m, const Key& key) {
  Reading rd;
  Records& r = rd.records;
  const Header& h = m.header;
  if (!h.qr || h.opcode != 0) {
    r = failure(Outcome::kTempFail, "bad response: not an answer to a query");
    return rd;
  }
  if (h.rcode != static_cast<uint8_t>(Rcode::kNoError) && h.rcode != static_cast<uint8_t>(Rcode::kNxDomain)) {
    r = failure(Outcome::kTempFail, rcodeName(h.rcode));
    return rd;
  }
  const bool authenticated = trust_ad_ && h.ad;
  // Walk the chain of CNAMEs from the query name (RFC 1034 §3.6.2), then take the RRset.
  const uint16_t type = key.second;
  std::string current = key.first;
  uint64_t ttl = UINT32_MAX;
  bool found = false;
  for (size_t hop = 0; hop <= kMaxCnameHops && !found; ++hop) {
    const ResourceRecord* cname = nullptr;
    for (const ResourceRecord& rr : m.answers) {
      if (rr.klass != kClassIn || rr.name != current) continue;
      if (rr.type == kTypeCname && !cname) cname = &rr;
      if (rr.type != type) continue;
      bool ok = true;
      size_t kept = r.mx.size() + r.addresses.size() + r.txt.size() + r.tlsa.size() + r.names.size();
      if (kept >= kMaxRecordsKept) continue;
      if (type == kTypeA || type == kTypeAaaa) {
        auto a = type == kTypeA ? decodeA(m, rr) : decodeAaaa(m, rr);
        if ((ok = a.has_value())) r.addresses.push_back(*a);
      } else if (type == kTypeMx) {
        auto mx = decodeMx(m, rr);
        if ((ok = mx.has_value())) r.mx.push_back(MxHost{mx->preference, mx->exchange});
      } else if (type == kTypeTxt) {
        auto t = decodeTxt(m, rr);
        if ((ok = t.has_value())) r.txt.push_back(std::move(*t));
      } else if (type == kTypeTlsa) {
        auto t = decodeTlsa(m, rr);
        if ((ok = t.has_value())) r.tlsa.push_back(std::move(*t));
      } else if (type == kTypePtr) {
        auto n = decodePtr(m, rr);
        if ((ok = n.has_value())) r.names.push_back(std::move(*n));
      }
      if (!ok) {
        r = failure(Outcome::kTempFail, fmt::format("bad response: malformed {} record", rrTypeName(type)));
        return rd;
      }
      ttl = std::min<uint64_t>(ttl, rr.ttl);
      found = true;
    }
    if (found) break;
    if (!cname) break;
    if (hop == kMaxCnameHops) {
      r = failure(Outcome::kTempFail, "CNAME chain too long");
      return rd;
    }
    auto target = decodeCname(m, *cname);
    if (!target || *target == ".") {
      r = failure(Outcome::kTempFail, "bad response: malformed CNAME record");
      return rd;
    }
    ttl = std::min<uint64_t>(ttl, cname->ttl);
    current = std::move(*target);
  }
  if (found) {
    r.outcome = Outcome::kOk;
    r.ttl = capTtl(ttl);
    r.authenticated = authenticated;
    return rd;
  }
  if (h.rcode == static_cast<uint8_t>(Rcode::kNxDomain)) {
    r.outcome = Outcome::kNxDomain;
    r.ttl = std::min<uint64_t>(negativeTtl(m), ttl);
    r.authenticated = authenticated;
    return rd;
  }
  if (current != key.first) {   // the chain ends in a CNAME whose target's records are not here
    rd.follow = current;
    rd.chain_ttl = capTtl(ttl);
    rd.chain_authenticated = authenticated;
    return rd;
  }
  r.authenticated = authenticated;
  r.outcome = Outcome::kNoData;
  r.ttl = negativeTtl(m);
  return rd;
}

// RFC 2308 §5: the smaller of the SOA's TTL and its MINIMUM, capped; without an SOA in the
// authority section, a negative answer is not cached.
uint32_t Resolver::Loop::negativeTtl(const Message& m) const {
  for (const ResourceRecord& rr : m.authority) {
    if (rr.type != kTypeSoa || rr.klass != kClassIn) continue;
    auto soa = decodeSoa(m, rr);
    if (!soa) continue;
    uint64_t ttl = std::min({static_cast<uint64_t>(rr.ttl), static_cast<uint64_t>(soa->minimum),
                             static_cast<uint64_t>(opts_.negative_ttl.count())});
    return capTtl(ttl);
  }
  return 0;
}

void Resolver::Loop::complete(const Key& key, uint64_t id, Records r) {
  auto it = inflight_.find(key);
  if (it == inflight_.end() || it->second.id != id) return;
  bool answer = r.outcome == Outcome::kOk || r.outcome == Outcome::kNxDomain || r.outcome == Outcome::kNoData;
  if (!answer) r.ttl = 0;
  if (r.ttl > 0) cache_.put(key, r, Clock::now() + std::chrono::seconds(r.ttl));
  std::vector<Done> waiters = std::move(it->second.waiters);
  inflight_.erase(it);
  // The waiters may start new lookups (a CNAME's target): the entry is gone by now.
  for (size_t i = 0; i < waiters.size(); ++i) {
    if (i + 1 == waiters.size()) waiters[i](std::move(r));
    else waiters[i](r);
  }
}

void Resolver::Loop::expire(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto [key, id] = std::move(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
    complete(key, id, failure(Outcome::kTempFail, "timeout"));   // no-op when it was answered
  }
}

int Resolver::Loop::pollTimeoutMs(Clock::time_point now) {
  int ms = -1;   // nothing pending: sleep until woken
  if (!deadlines_.empty()) {
    // Rounded up so the wake-up is never before the deadline (no busy loop).
    ms = clampMs(std::chrono::ceil<std::chrono::milliseconds>(deadlines_.begin()->first - now).count());
  }
  timeval tv;
  if (ares_timeout(channel_, nullptr, &tv)) {
    int ares_ms = clampMs(static_cast<int64_t>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000);
    ms = ms < 0 ? ares_ms : std::min(ms, ares_ms);
  }
  return ms;
}

void Resolver::Loop::cancelAll() {
  shutting_down_.store(true);
  // Every outstanding query's callback runs here with ARES_EDESTRUCTION: its waiters get
  // "shutting down", and whatever they start fails the same way at once.
  ares_destroy(channel_);
  channel_ = nullptr;
  sockets_.clear();
  // Queries whose c-ares side already ended (a CNAME target pending, say) end here.
  while (!inflight_.empty()) {
    auto it = inflight_.begin();
    complete(it->first, it->second.id, failure(Outcome::kTempFail, "shutting down"));
  }
  deadlines_.clear();
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(incoming_);
  }
  for (auto& task : batch) task();
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Resolver>> Resolver::create(ResolverOptions options) {
  // c-ares asks for one process-wide initialisation, itself not thread-safe; a function-local
  // static is. Never cleaned up: the library state lives as long as the process.
  static const int kLibraryStatus = ares_library_init(ARES_LIB_INIT_ALL);
  if (kLibraryStatus != ARES_SUCCESS)
    return Status::io(fmt::format("dns: c-ares initialisation failed: {}", ares_strerror(kLibraryStatus)));
  if (options.timeout.count() <= 0) return Status::invalid("dns: the timeout must be positive");
  auto loop = std::make_unique<Loop>(std::move(options));
  if (Status s = loop->init(); !s) return s;
  loop->start();
  return std::unique_ptr<Resolver>(new Resolver(std::move(loop)));
}

Resolver::Resolver(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}

Resolver::~Resolver() = default;   // Loop's destructor stops the thread

void Resolver::a(const std::string& host, std::function<void(AddressAnswer)> done) {
  auto name = queryName(host);
  if (!name) return done(AddressAnswer{Outcome::kPermFail, {}, "invalid name"});
  loop_->one<AddressAnswer>(std::move(*name), kTypeA, toAddresses, std::move(done));
}

void Resolver::aaaa(const std::string& host, std::function<void(AddressAnswer)> done) {
  auto name = queryName(host);
  if (!name) return done(AddressAnswer{Outcome::kPermFail, {}, "invalid name"});
  loop_->one<AddressAnswer>(std::move(*name), kTypeAaaa, toAddresses, std::move(done));
}

void Resolver::ptr(const IpAddress& address, std::function<void(NameAnswer)> done) {
  loop_->one<NameAnswer>(reverseName(address), kTypePtr, toNames, std::move(done));
}

std::string reverseName(const IpAddress& address) {
  IpAddress a = address.unmapped();
  return a.reversedForDns() + (a.isV4() ? ".in-addr.arpa" : ".ip6.arpa");
}

void Resolver::mx(const std::string& domain, std::function<void(MxAnswer)> done) {
  auto name = queryName(domain);
  if (!name) {
    done(MxAnswer{Outcome::kPermFail, {}, false, "invalid name"});
    return;
  }
  Loop* loop = loop_.get();
  if (auto r = loop->cached(*name, kTypeMx)) {
    MxAnswer a = toMx(*r);
    loop->counted(a.outcome);
    done(std::move(a));
    return;
  }
  loop->submit([loop, name = std::move(*name), done = std::move(done)]() mutable {
    loop->fetch(name, kTypeMx, 0, [loop, done = std::move(done)](Records r) {
      MxAnswer a = toMx(r);
      loop->counted(a.outcome);
      done(std::move(a));
    });
  });
}

void Resolver::txt(const std::string& name_in, std::function<void(TxtAnswer)> done) {
  auto name = queryName(name_in);
  if (!name) {
    done(TxtAnswer{Outcome::kPermFail, {}, "invalid name"});
    return;
  }
  Loop* loop = loop_.get();
  if (auto r = loop->cached(*name, kTypeTxt)) {
    TxtAnswer a = toTxt(*r);
    loop->counted(a.outcome);
    done(std::move(a));
    return;
  }
  loop->submit([loop, name = std::move(*name), done = std::move(done)]() mutable {
    loop->fetch(name, kTypeTxt, 0, [loop, done = std::move(done)](Records r) {
      TxtAnswer a = toTxt(r);
      loop->counted(a.outcome);
      done(std::move(a));
    });
  });
}

void Resolver::tlsa(const std::string& name_in, std::function<void(TlsaAnswer)> done) {
  auto name = queryName(name_in);
  if (!name) {
    done(TlsaAnswer{Outcome::kPermFail, {}, "invalid name"});
    return;
  }
  Loop* loop = loop_.get();
  if (auto r = loop->cached(*name, kTypeTlsa)) {
    TlsaAnswer a = toTlsa(*r);
    loop->counted(a.outcome);
    done(std::move(a));
    return;
  }
  loop->submit([loop, name = std::move(*name), done = std::move(done)]() mutable {
    loop->fetch(name, kTypeTlsa, 0, [loop, done = std::move(done)](Records r) {
      TlsaAnswer a = toTlsa(r);
      loop->counted(a.outcome);
      done(std::move(a));
    });
  });
}

void Resolver::addresses(const std::string& host, std::function<void(AddressAnswer)> done) {
  auto name = queryName(host);
  if (!name) {
    done(AddressAnswer{Outcome::kPermFail, {}, "invalid name"});
    return;
  }
  Loop* loop = loop_.get();
  // Both halves cached: answered here. (Counted as hits only then; otherwise the thread
  // looks both up again, and counts what it finds.)
  {
    auto v4 = loop->cached(*name, kTypeA, false);
    if (v4) {
      if (auto v6 = loop->cached(*name, kTypeAaaa, false)) {
        loop->countHits(2);
        AddressAnswer a = combine(*v4, *v6);
        loop->counted(a.outcome);
        done(std::move(a));
        return;
      }
    }
  }
  struct Pair {
    Records v4, v6;
    int pending = 2;
    std::function<void(AddressAnswer)> done;
  };
  auto pair = std::make_shared<Pair>();
  pair->done = std::move(done);
  loop->submit([loop, name = std::move(*name), pair] {
    auto half = [loop, pair](Records Pair::*slot) {
      return [loop, pair, slot](Records r) {
        (*pair).*slot = std::move(r);
        if (--pair->pending > 0) return;
        AddressAnswer a = combine(pair->v4, pair->v6);
        loop->counted(a.outcome);
        auto d = std::move(pair->done);
        d(std::move(a));
      };
    };
    loop->fetch(name, kTypeAaaa, 0, half(&Pair::v6));
    loop->fetch(name, kTypeA, 0, half(&Pair::v4));
  });
}

Resolver::Stats Resolver::stats() { return loop_->stats(); }

bool Resolver::trustsAd() const { return loop_->trustsAd(); }

std::vector<MxHost> orderMx(std::vector<MxHost> hosts, uint64_t seed) {
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  // splitmix64: the same order for the same seed everywhere (std::shuffle's is unspecified).
  uint64_t state = seed;
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  for (size_t begin = 0; begin < hosts.size();) {
    size_t end = begin + 1;
    while (end < hosts.size() && hosts[end].preference == hosts[begin].preference) ++end;
    for (size_t i = end - 1; i > begin; --i) {   // Fisher-Yates over [begin, end)
      size_t j = begin + static_cast<size_t>(next() % (i - begin + 1));
      std::swap(hosts[i], hosts[j]);
    }
    begin = end;
  }
  return hosts;
}

// ---------------------------------------------------------------------------------------
// Coroutine forms. The callback runs on the resolver thread (or inline); the result is
// posted to the awaiting coroutine's executor. asio handlers are move-only, std::function
// wants a copyable callable: the handler lives in a shared_ptr.

namespace {

template <class Answer, class Start>
auto awaitLookup(Start start) {
  auto init = [](auto handler, Start s) {
    auto ex = asio::get_associated_executor(handler);
    using Handler = decltype(handler);
    auto h = std::make_shared<Handler>(std::move(handler));
    s([h, ex](Answer a) {
      asio::post(ex, [h, a = std::move(a)]() mutable { std::move(*h)(std::move(a)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(Answer)>(init, asio::use_awaitable, std::move(start));
}

}  // namespace

net::awaitable<MxAnswer> asyncMx(Resolver& r, std::string domain) {
  auto start = [&r, domain = std::move(domain)](std::function<void(MxAnswer)> done) { r.mx(domain, std::move(done)); };
  return awaitLookup<MxAnswer>(std::move(start));
}

net::awaitable<AddressAnswer> asyncAddresses(Resolver& r, std::string host) {
  auto start = [&r, host = std::move(host)](std::function<void(AddressAnswer)> done) {
    r.addresses(host, std::move(done));
  };
  return awaitLookup<AddressAnswer>(std::move(start));
}

net::awaitable<AddressAnswer> asyncA(Resolver& r, std::string host) {
  auto start = [&r, host = std::move(host)](std::function<void(AddressAnswer)> done) { r.a(host, std::move(done)); };
  return awaitLookup<AddressAnswer>(std::move(start));
}

net::awaitable<AddressAnswer> asyncAaaa(Resolver& r, std::string host) {
  auto start = [&r, host = std::move(host)](std::function<void(AddressAnswer)> done) { r.aaaa(host, std::move(done)); };
  return awaitLookup<AddressAnswer>(std::move(start));
}

net::awaitable<NameAnswer> asyncPtr(Resolver& r, IpAddress address) {
  auto start = [&r, address](std::function<void(NameAnswer)> done) { r.ptr(address, std::move(done)); };
  return awaitLookup<NameAnswer>(std::move(start));
}

net::awaitable<TxtAnswer> asyncTxt(Resolver& r, std::string name) {
  auto start = [&r, name = std::move(name)](std::function<void(TxtAnswer)> done) { r.txt(name, std::move(done)); };
  return awaitLookup<TxtAnswer>(std::move(start));
}

net::awaitable<TlsaAnswer> asyncTlsa(Resolver& r, std::string name) {
  auto start = [&r, name = std::move(name)](std::function<void(TlsaAnswer)> done) { r.tlsa(name, std::move(done)); };
  return awaitLookup<TlsaAnswer>(std::move(start));
}

}  // namespace postern::dns
