// DNS blocklist lookups (RFC 5782) with c-ares on one dedicated thread.
//
// Threading: check() appends a request to `incoming_` under `mu_` and writes a byte to a
// self-pipe. The lookup thread owns everything else (the c-ares channel, which is not
// thread-safe in c-ares 1.18, the pending checks, the sockets): it polls the self-pipe and
// the sockets c-ares asks for (ARES_OPT_SOCK_STATE_CB; poll, not select, because a busy
// server's descriptors exceed FD_SETSIZE), sleeping until the next c-ares retry or the
// earliest check deadline. Each check has its own deadline, timeout_ms after it started:
// zones still unanswered then are failed open, and their late answers are dropped.
#include "protect/dnsbl.h"

#include <ares.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "log/log.h"
#include "util/thread_name.h"

namespace postern::protect {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kThreadName = "postern-dnsbl";  // at most 15 characters (pthread)
constexpr int kClassIn = 1;                           // RFC 1035 §3.2.4
constexpr int kTypeA = 1;                             // RFC 1035 §3.2.2
constexpr int kMaxAnswers = 16;                       // A records read from one answer; lists return one to a few
constexpr int kTries = 2;                             // c-ares attempts per lookup within timeout_ms (one UDP retry)
// Answers to a burst of checks arrive together on one UDP socket; the default buffer drops
// some of a few hundred (measured), and each drop costs a retry. The kernel caps it at rmem_max.
constexpr int kReceiveBufferBytes = 1 << 20;
constexpr auto kOperatorLogInterval = std::chrono::minutes(1);  // per zone: refused / invalid answers
constexpr uint8_t kLoopbackOctet = 127;                         // RFC 5782 §2.3: answers are in 127.0.0.0/8
constexpr uint8_t kRefusedOctet = 255;                          // 127.255.255.x: the operator refuses this resolver

// A stable, short reason for a c-ares failure status (the `reason` of dnsbl.failed_open).
std::string_view reasonOf(int status) {
  switch (status) {
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ESERVFAIL: return "servfail";
    case ARES_EREFUSED: return "refused";
    case ARES_ECONNREFUSED: return "connection_refused";
    case ARES_EFORMERR: return "formerr";
    case ARES_ENOTIMP: return "notimp";
    case ARES_EBADRESP: return "bad_response";
    case ARES_EBADNAME: return "bad_name";
    case ARES_ENOMEM: return "no_memory";
    default: return "error";
  }
}

int clampMs(int64_t ms) {
  return static_cast<int>(std::clamp<int64_t>(ms, 0, INT_MAX));
}

// The verdict for a check that never ran (shutdown).
DnsblVerdict cancelledVerdict() {
  DnsblVerdict v;
  v.failed_open = true;
  return v;
}

}  // namespace

std::string queryName(const IpAddress& client, std::string_view zone) {
  if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
  std::string name = client.unmapped().reversedForDns();
  name += '.';
  name += zone;
  return name;
}

Answer classify(const config::DnsblZone& zone, const IpAddress& a) {
  if (!a.isV4() || a.bytes()[0] != kLoopbackOctet) return Answer::kInvalid;
  if (a.bytes()[1] == kRefusedOctet && a.bytes()[2] == kRefusedOctet) return Answer::kResolverRefused;
  if (zone.codes.empty()) return Answer::kListed;
  return std::find(zone.codes.begin(), zone.codes.end(), a) != zone.codes.end() ? Answer::kListed : Answer::kNotListed;
}

// The lookup thread and everything it owns. `incoming_` and `stopping_` are shared under
// `mu_`; the members after them belong to the lookup thread alone (and to init() and the
// destructor, which run while no thread does).
class Dnsbl::Loop {
 public:
  explicit Loop(const config::Dnsbl& cfg) : cfg_(cfg) {}
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Channel, servers and self-pipe; then start() runs the thread.
  Status init();
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  // Ends the thread after failing open every pending check. Idempotent.
  void stop();
  void submit(const IpAddress& client, std::function<void(DnsblVerdict)> done);

 private:
  struct Request {
    IpAddress client;
    std::function<void(DnsblVerdict)> done;
  };
  struct ZoneResult {
    bool pending = true;
    bool failed = false;            // no usable answer: ignored, failed open
    std::vector<IpAddress> listed;  // listing codes received
  };
  struct Check {
    std::string client_text;
    Clock::time_point deadline;
    std::function<void(DnsblVerdict)> done;
    std::vector<ZoneResult> zones;  // parallel to cfg_.zones
    size_t pending = 0;
  };
  // The argument of one c-ares query; owned by c-ares until its callback, which frees it.
  // c-ares calls every callback exactly once, including at ares_destroy (ARES_EDESTRUCTION).
  struct Query {
    Loop* loop;
    uint64_t check_id;
    size_t zone;
  };

  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void onAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  void run();
  void startCheck(Request r);
  void handleAnswer(const Query& q, int status, const unsigned char* abuf, int alen);
  void readAnswer(Check& c, size_t zone, const unsigned char* abuf, int alen);
  void failZone(Check& c, size_t zone, std::string_view reason, std::string_view detail);
  // Finishes the checks whose last zone answered, then those past their deadline.
  void finishReady();
  void expire(Clock::time_point now);
  void finish(uint64_t id);
  int pollTimeoutMs(Clock::time_point now);
  bool operatorLogDue(std::vector<Clock::time_point>& last, size_t zone, Clock::time_point now);
  void cancelAll();

  const config::Dnsbl cfg_;
  ares_channel channel_ = nullptr;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::thread thread_;

  std::mutex mu_;
  std::vector<Request> incoming_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_

  uint64_t next_id_ = 1;
  // Pending checks by id. Ids grow with start time and every check has the same timeout,
  // so this is also deadline order: the first entry expires first.
  std::map<uint64_t, Check> checks_;
  std::vector<uint64_t> ready_;                    // checks with no zone pending, to finish
  std::map<ares_socket_t, short> sockets_;         // what c-ares wants polled
  std::vector<Clock::time_point> refused_logged_;  // per zone: last 127.255.255.x warning
  std::vector<Clock::time_point> invalid_logged_;  // per zone: last non-127/8 warning
};

Dnsbl::Loop::~Loop() {
  stop();
  if (channel_) ares_destroy(channel_);  // only when the thread never ran
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

Status Dnsbl::Loop::init() {
  ares_options opts{};
  opts.sock_state_cb = &Loop::onSocketState;
  opts.sock_state_cb_data = this;
  // Per-attempt timeout: kTries attempts fit in timeout_ms; the check's own deadline is the
  // hard limit (c-ares lengthens later attempts).
  opts.timeout = std::max(1, static_cast<int>(std::min<uint64_t>(cfg_.timeout_ms, INT_MAX) / kTries));
  opts.tries = kTries;
  // SERVFAIL and REFUSED are answers, handed to us as such: without NOCHECKRESP c-ares 1.18
  // tries the next server and finally reports them as ARES_ECONNREFUSED, which would send
  // an operator looking for a firewall problem.
  opts.flags = ARES_FLAG_NOCHECKRESP;
  opts.socket_receive_buffer_size = kReceiveBufferBytes;
  int rc = ares_init_options(
      &channel_, &opts,
      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_SOCK_RCVBUF);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return Status::io(fmt::format("dnsbl: cannot create a resolver channel: {}", ares_strerror(rc)));
  }
  if (cfg_.resolver) {
    // "IP:PORT" / "[IPv6]:PORT", the form Endpoint::toString() writes; UDP, TCP on truncation.
    std::string server = cfg_.resolver->toString();
    rc = ares_set_servers_ports_csv(channel_, server.c_str());
    if (rc != ARES_SUCCESS)
      return Status::invalid(fmt::format("dnsbl: cannot use resolver {}: {}", server, ares_strerror(rc)));
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return Status::io(fmt::format("dnsbl: pipe: {}", std::strerror(errno)));
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  refused_logged_.assign(cfg_.zones.size(), Clock::time_point::min());
  invalid_logged_.assign(cfg_.zones.size(), Clock::time_point::min());
  return Status::ok();
}

void Dnsbl::Loop::stop() {
  if (!thread_.joinable()) return;
  assert(thread_.get_id() != std::this_thread::get_id() && "~Dnsbl called from a done callback");
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  char b = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_, &b, 1);  // full pipe: a wake-up is already pending
  thread_.join();
}

void Dnsbl::Loop::submit(const IpAddress& client, std::function<void(DnsblVerdict)> done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      bool wake = incoming_.empty();  // otherwise a byte is already on its way
      incoming_.push_back(Request{client, std::move(done)});
      if (wake) {
        char b = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_write_, &b, 1);
      }
      return;
    }
  }
  // Only reachable from a `done` callback while the destructor drains (see dnsbl.h).
  done(cancelledVerdict());
}

void Dnsbl::Loop::onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* loop = static_cast<Loop*>(data);
  if (!readable && !writable) {
    loop->sockets_.erase(fd);
  } else {
    loop->sockets_[fd] = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
  }
}

void Dnsbl::Loop::onAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  q->loop->handleAnswer(*q, status, abuf, alen);
}

void Dnsbl::Loop::run() {
  util::setThreadName(kThreadName);
  std::vector<pollfd> fds;
  for (;;) {
    std::vector<Request> batch;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      batch.swap(incoming_);
    }
    for (Request& r : batch) startCheck(std::move(r));
    finishReady();
    expire(Clock::now());

    fds.clear();
    fds.push_back(pollfd{wake_read_, POLLIN, 0});
    for (const auto& [fd, events] : sockets_) fds.push_back(pollfd{fd, events, 0});
    int n = ::poll(fds.data(), fds.size(), pollTimeoutMs(Clock::now()));
    if (n < 0 && errno != EINTR) {
      log::error("dnsbl.poll_failed").kv("error", std::strerror(errno));
      continue;  // deadlines still fire on the next turn; poll only fails on EINVAL/ENOMEM
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
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // retries and c-ares timeouts
    finishReady();
  }
  cancelAll();
}

void Dnsbl::Loop::startCheck(Request r) {
  uint64_t id = next_id_++;
  Check& c = checks_[id];
  c.client_text = r.client.toString();
  c.deadline = Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms);
  c.done = std::move(r.done);
  c.zones.resize(cfg_.zones.size());
  c.pending = cfg_.zones.size();
  for (size_t i = 0; i < cfg_.zones.size(); ++i) {
    std::string name = queryName(r.client, cfg_.zones[i].name);
    // The callback may run inside ares_query (e.g. a name c-ares cannot encode); it only
    // records the result, so `c` stays valid here.
    auto query = std::make_unique<Query>(Query{this, id, i});
    ares_query(channel_, name.c_str(), kClassIn, kTypeA, &Loop::onAnswer, query.release());
  }
}

void Dnsbl::Loop::handleAnswer(const Query& q, int status, const unsigned char* abuf, int alen) {
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;  // shutting down
  auto it = checks_.find(q.check_id);
  if (it == checks_.end()) return;  // the check already finished at its deadline
  Check& c = it->second;
  ZoneResult& z = c.zones[q.zone];
  if (!z.pending) return;
  switch (status) {
    case ARES_SUCCESS: readAnswer(c, q.zone, abuf, alen); break;
    case ARES_ENOTFOUND:  // NXDOMAIN: not listed (RFC 5782 §2.1)
    case ARES_ENODATA: break;
    default: failZone(c, q.zone, reasonOf(status), ares_strerror(status)); break;
  }
  z.pending = false;
  if (--c.pending == 0) ready_.push_back(q.check_id);
}

void Dnsbl::Loop::readAnswer(Check& c, size_t zone, const unsigned char* abuf, int alen) {
  const config::DnsblZone& zc = cfg_.zones[zone];
  ares_addrttl ttls[kMaxAnswers];
  int count = kMaxAnswers;
  int rc = ares_parse_a_reply(abuf, alen, nullptr, ttls, &count);
  if (rc == ARES_ENODATA) return;
  if (rc != ARES_SUCCESS) {
    failZone(c, zone, "bad_response", ares_strerror(rc));
    return;
  }
  ZoneResult& z = c.zones[zone];
  bool refused = false;
  std::optional<IpAddress> invalid;
  for (int i = 0; i < count; ++i) {
    uint8_t bytes[4];
    std::memcpy(bytes, &ttls[i].ipaddr, sizeof bytes);  // network order: a.b.c.d
    IpAddress a = IpAddress::v4(bytes);
    switch (classify(zc, a)) {
      case Answer::kListed: z.listed.push_back(a); break;
      case Answer::kNotListed: break;
      case Answer::kResolverRefused: refused = true; break;
      case Answer::kInvalid: invalid = a; break;
    }
  }
  if (!refused && !invalid) return;
  // Not an answer about the client: the whole reply is ignored. These come from the
  // resolver or the operator, not the client, so they are logged per zone, not per check.
  z.listed.clear();
  z.failed = true;
  Clock::time_point now = Clock::now();
  if (refused) {
    if (operatorLogDue(refused_logged_, zone, now))
      log::warn("dnsbl.resolver_refused")
          .kv("zone", zc.name)
          .kv("hint",
              "the list operator refuses this resolver (127.255.255.x); set [protect.dnsbl] "
              "resolver to your own recursive resolver");
  } else if (operatorLogDue(invalid_logged_, zone, now)) {
    log::warn("dnsbl.invalid_answer").kv("zone", zc.name).kv("answer", invalid->toString());
  }
}

void Dnsbl::Loop::failZone(Check& c, size_t zone, std::string_view reason, std::string_view detail) {
  c.zones[zone].failed = true;
  c.zones[zone].listed.clear();
  log::warn("dnsbl.failed_open")
      .kv("zone", cfg_.zones[zone].name)
      .kv("client", c.client_text)
      .kv("reason", reason)
      .opt("detail", detail);
}

bool Dnsbl::Loop::operatorLogDue(std::vector<Clock::time_point>& last, size_t zone, Clock::time_point now) {
  if (last[zone] != Clock::time_point::min() && now - last[zone] < kOperatorLogInterval) return false;
  last[zone] = now;
  return true;
}

void Dnsbl::Loop::finishReady() {
  std::vector<uint64_t> ids;
  ids.swap(ready_);
  for (uint64_t id : ids) finish(id);
}

void Dnsbl::Loop::expire(Clock::time_point now) {
  while (!checks_.empty() && checks_.begin()->second.deadline <= now) {
    auto& [id, c] = *checks_.begin();
    for (size_t i = 0; i < c.zones.size(); ++i) {
      if (!c.zones[i].pending) continue;
      failZone(c, i, "timeout", "");
      c.zones[i].pending = false;  // its answer, if it ever comes, finds no check
    }
    finish(id);
  }
}

void Dnsbl::Loop::finish(uint64_t id) {
  auto it = checks_.find(id);
  if (it == checks_.end()) return;
  Check& c = it->second;
  DnsblVerdict v;
  std::string score_zone;  // the score zone whose listing reached the threshold
  for (size_t i = 0; i < c.zones.size(); ++i) {
    const ZoneResult& z = c.zones[i];
    const config::DnsblZone& zc = cfg_.zones[i];
    if (z.pending || z.failed) {
      v.failed_open = true;
      continue;
    }
    if (z.listed.empty()) continue;
    for (const IpAddress& a : z.listed) v.listed.push_back(zc.name + "=" + a.toString());
    if (zc.reject) {
      if (!v.reject) {  // reject zones decide first, in configuration order
        v.reject = true;
        v.zone = zc.name;
      }
    } else {
      v.score += zc.score;
      if (score_zone.empty() && v.score >= cfg_.threshold) score_zone = zc.name;
    }
  }
  if (!v.reject && !score_zone.empty()) {
    v.reject = true;
    v.zone = score_zone;
  }
  log::debug("dnsbl.checked")
      .kv("client", c.client_text)
      .kv("reject", v.reject)
      .opt("zone", v.zone)
      .kv("score", v.score)
      .kv("failed_open", v.failed_open);
  std::function<void(DnsblVerdict)> done = std::move(c.done);
  checks_.erase(it);
  done(std::move(v));
}

int Dnsbl::Loop::pollTimeoutMs(Clock::time_point now) {
  int ms = -1;  // nothing pending: sleep until woken
  if (!checks_.empty()) {
    auto left = checks_.begin()->second.deadline - now;
    // Rounded up so the wake-up is never before the deadline (no busy loop).
    ms = clampMs(std::chrono::ceil<std::chrono::milliseconds>(left).count());
  }
  timeval tv;
  if (ares_timeout(channel_, nullptr, &tv)) {
    int ares_ms = clampMs(static_cast<int64_t>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000);
    ms = ms < 0 ? ares_ms : std::min(ms, ares_ms);
  }
  return ms;
}

void Dnsbl::Loop::cancelAll() {
  // Every outstanding query's callback runs here with ARES_EDESTRUCTION and frees its Query.
  ares_destroy(channel_);
  channel_ = nullptr;
  sockets_.clear();
  std::vector<Request> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(incoming_);
  }
  size_t pending = checks_.size() + batch.size();
  if (pending) log::info("dnsbl.cancelled").kv("pending", static_cast<uint64_t>(pending));
  // Answers already received still count; unanswered zones fail open, without a line each.
  while (!checks_.empty()) {
    auto& [id, c] = *checks_.begin();
    for (ZoneResult& z : c.zones) {
      if (z.pending) {
        z.pending = false;
        z.failed = true;
      }
    }
    finish(id);
  }
  ready_.clear();
  for (Request& r : batch) r.done(cancelledVerdict());
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Dnsbl>> Dnsbl::create(const config::Dnsbl& cfg) {
  if (cfg.zones.empty()) return std::unique_ptr<Dnsbl>(new Dnsbl(nullptr));
  // c-ares asks for one process-wide initialisation; it is not thread-safe, a function-local
  // static is. Never cleaned up: the library state lives as long as the process.
  static const int kLibraryStatus = ares_library_init(ARES_LIB_INIT_ALL);
  if (kLibraryStatus != ARES_SUCCESS)
    return Status::io(fmt::format("dnsbl: c-ares initialisation failed: {}", ares_strerror(kLibraryStatus)));
  auto loop = std::make_unique<Loop>(cfg);
  if (Status s = loop->init(); !s) return s;
  loop->start();
  return std::unique_ptr<Dnsbl>(new Dnsbl(std::move(loop)));
}

Dnsbl::Dnsbl(std::unique_ptr<Loop> loop) : loop_(std::move(loop)) {}

Dnsbl::~Dnsbl() = default;  // Loop's destructor stops the thread (see dnsbl.h)

void Dnsbl::check(const IpAddress& client, std::function<void(DnsblVerdict)> done) {
  if (!loop_) {
    done(DnsblVerdict{});
    return;
  }
  loop_->submit(client, std::move(done));
}

}  // namespace postern::protect
