// DNS blocklist lookups (RFC 5782) through the shared DNS layer (dns/resolver.h).
//
// Threading: check() registers the check (`DnsblState::checks`, under `registry_mu`) and asks the
// resolver for one A record set per zone. The answers come back on the resolver thread (or
// inline, from its cache); each is recorded under its check's own mutex, and the last one
// finishes the check. The deadline thread sleeps on `DnsblState::wake` until the earliest
// deadline (ids grow with start time and every check has the same timeout, so the first
// registered check is the first to expire) and fails open the zones still unanswered.
//
// Lifetimes: the resolver callbacks hold the DnsblState and their Check by shared_ptr, so an answer
// arriving after the Dnsbl is gone (the shared resolver outlives it) finds a finished check
// and does nothing. `done` runs with its check's mutex held, and a check leaves the registry
// only after its `done` returned: so the destructor, which finishes every registered check
// under that mutex, returns only when no `done` is running or can run any more.
#include "protect/dnsbl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
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
constexpr auto kOperatorLogInterval = std::chrono::minutes(1);  // per zone: refused / invalid answers
constexpr uint8_t kLoopbackOctet = 127;                         // RFC 5782 §2.3: answers are in 127.0.0.0/8
constexpr uint8_t kRefusedOctet = 255;                          // 127.255.255.x: the operator refuses this resolver

// A stable, short reason for a lookup that gave no answer (the `reason` of dnsbl.failed_open),
// from the resolver's error text (dns/resolver.cc reasonOf, dns/message.cc rcodeName).
std::string_view reasonOf(const dns::AddressAnswer& a) {
  if (a.outcome == dns::Outcome::kPermFail) return "bad_name";
  const std::string& e = a.error;
  if (e == "timeout") return "timeout";
  if (e == "SERVFAIL") return "servfail";
  if (e == "REFUSED") return "refused";
  if (e == "FORMERR") return "formerr";
  if (e == "NOTIMP") return "notimp";
  if (e == "connection refused") return "connection_refused";
  if (e == "shutting down") return "shutting_down";
  if (e.starts_with("bad response")) return "bad_response";
  return "error";
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

namespace {

struct ZoneResult {
  bool pending = true;
  bool failed = false;            // no usable answer: ignored, failed open
  std::vector<IpAddress> listed;  // listing codes received
};

// One check of one client. Everything but the constants is guarded by `mu`.
struct Check {
  uint64_t id = 0;
  std::string client_text;
  Clock::time_point deadline;
  std::mutex mu;
  bool finished = false;  // `done` was called (or is running)
  std::function<void(DnsblVerdict)> done;
  std::vector<ZoneResult> zones;  // parallel to the configured zones
  size_t pending = 0;
};

// What the resolver callbacks and the deadline thread share; kept alive by the callbacks
// still in flight after the Dnsbl is gone.
struct DnsblState {
  explicit DnsblState(const config::Dnsbl& c)
      : cfg(c),
        refused_logged(c.zones.size(), Clock::time_point::min()),
        invalid_logged(c.zones.size(), Clock::time_point::min()) {}

  // A zone's answer, on the resolver thread or inline.
  void answer(Check& c, size_t zone, const dns::AddressAnswer& a);
  // Fails open the zones of `c` still pending (logged as timeouts unless `quiet`), then
  // finishes it. False (and nothing done) when it had finished already.
  bool expire(Check& c, bool quiet);

  const config::Dnsbl cfg;

  std::mutex registry_mu;
  std::condition_variable wake;                       // the deadline thread
  bool stopping = false;                              // guarded by registry_mu
  uint64_t next_id = 1;                               // guarded by registry_mu
  std::map<uint64_t, std::shared_ptr<Check>> checks;  // guarded by registry_mu: pending, in deadline order

 private:
  void readAnswer(Check& c, size_t zone, const std::vector<IpAddress>& addresses);
  void failZone(Check& c, size_t zone, std::string_view reason, std::string_view detail);
  // Computes the verdict and calls `done`, with c.mu held (by `lock`); then unregisters.
  void finish(Check& c, std::unique_lock<std::mutex>& lock);
  bool operatorLogDue(std::vector<Clock::time_point>& last, size_t zone);

  std::mutex log_mu;
  std::vector<Clock::time_point> refused_logged;  // guarded by log_mu: per zone, last 127.255.255.x warning
  std::vector<Clock::time_point> invalid_logged;  // guarded by log_mu: per zone, last non-127/8 warning
};

}  // namespace

void DnsblState::answer(Check& c, size_t zone, const dns::AddressAnswer& a) {
  std::unique_lock lock(c.mu);
  if (c.finished || !c.zones[zone].pending) return;  // past its deadline, or shut down
  switch (a.outcome) {
    case dns::Outcome::kOk: readAnswer(c, zone, a.addresses); break;
    case dns::Outcome::kNxDomain:  // not listed (RFC 5782 §2.1)
    case dns::Outcome::kNoData: break;
    case dns::Outcome::kTempFail:
    case dns::Outcome::kPermFail: failZone(c, zone, reasonOf(a), a.error); break;
  }
  c.zones[zone].pending = false;
  if (--c.pending == 0) finish(c, lock);
}

bool DnsblState::expire(Check& c, bool quiet) {
  std::unique_lock lock(c.mu);
  if (c.finished) return false;
  for (size_t i = 0; i < c.zones.size(); ++i) {
    ZoneResult& z = c.zones[i];
    if (!z.pending) continue;
    if (quiet) {  // shutting down: answers already received still count, no line per zone
      z.failed = true;
      z.listed.clear();
    } else {
      failZone(c, i, "timeout", "");
    }
    z.pending = false;
  }
  c.pending = 0;
  finish(c, lock);
  return true;
}

void DnsblState::readAnswer(Check& c, size_t zone, const std::vector<IpAddress>& addresses) {
  const config::DnsblZone& zc = cfg.zones[zone];
  ZoneResult& z = c.zones[zone];
  bool refused = false;
  std::optional<IpAddress> invalid;
  for (const IpAddress& a : addresses) {
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
  if (refused) {
    if (operatorLogDue(refused_logged, zone))
      log::warn("dnsbl.resolver_refused")
          .kv("zone", zc.name)
          .kv("hint",
              "the list operator refuses this resolver (127.255.255.x); set [protect.dnsbl] "
              "resolver to your own recursive resolver");
  } else if (operatorLogDue(invalid_logged, zone)) {
    log::warn("dnsbl.invalid_answer").kv("zone", zc.name).kv("answer", invalid->toString());
  }
}

void DnsblState::failZone(Check& c, size_t zone, std::string_view reason, std::string_view detail) {
  c.zones[zone].failed = true;
  c.zones[zone].listed.clear();
  log::warn("dnsbl.failed_open")
      .kv("zone", cfg.zones[zone].name)
      .kv("client", c.client_text)
      .kv("reason", reason)
      .opt("detail", detail);
}

bool DnsblState::operatorLogDue(std::vector<Clock::time_point>& last, size_t zone) {
  Clock::time_point now = Clock::now();
  std::lock_guard lock(log_mu);
  if (last[zone] != Clock::time_point::min() && now - last[zone] < kOperatorLogInterval) return false;
  last[zone] = now;
  return true;
}

void DnsblState::finish(Check& c, std::unique_lock<std::mutex>& lock) {
  DnsblVerdict v;
  std::string score_zone;  // the score zone whose listing reached the threshold
  for (size_t i = 0; i < c.zones.size(); ++i) {
    const ZoneResult& z = c.zones[i];
    const config::DnsblZone& zc = cfg.zones[i];
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
      if (score_zone.empty() && v.score >= cfg.threshold) score_zone = zc.name;
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
  c.finished = true;
  std::function<void(DnsblVerdict)> done = std::move(c.done);
  done(std::move(v));  // c.mu held: see the lifetimes note at the top
  lock.unlock();
  std::lock_guard registry(registry_mu);
  if (auto it = checks.find(c.id); it != checks.end() && it->second.get() == &c) checks.erase(it);
}

// ---------------------------------------------------------------------------------------

class Dnsbl::Impl {
 public:
  Impl(std::shared_ptr<DnsblState> state, std::unique_ptr<dns::Resolver> own, dns::Resolver& resolver)
      : state_(std::move(state)), own_(std::move(own)), resolver_(resolver) {
    deadlines_ = std::thread([this] { runDeadlines(); });
  }
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void check(const IpAddress& client, std::function<void(DnsblVerdict)> done);

 private:
  void runDeadlines();

  const std::shared_ptr<DnsblState> state_;
  std::unique_ptr<dns::Resolver> own_;  // [protect.dnsbl] resolver; destroyed after the checks end
  dns::Resolver& resolver_;             // *own_, or the shared one
  std::thread deadlines_;
};

Dnsbl::Impl::~Impl() {
  assert(deadlines_.get_id() != std::this_thread::get_id() && "~Dnsbl called from a done callback");
  {
    std::lock_guard lock(state_->registry_mu);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  deadlines_.join();
  std::map<uint64_t, std::shared_ptr<Check>> pending;
  {
    std::lock_guard lock(state_->registry_mu);
    pending.swap(state_->checks);
  }
  // Waits for a `done` running on the resolver thread (it holds the check's mutex); such a
  // check is still registered, but finished.
  uint64_t cancelled = 0;
  for (auto& [id, c] : pending) cancelled += state_->expire(*c, /*quiet=*/true) ? 1 : 0;
  if (cancelled) log::info("dnsbl.cancelled").kv("pending", cancelled);
  // own_ goes next: its callbacks ("shutting down") find every check finished.
}

void Dnsbl::Impl::check(const IpAddress& client, std::function<void(DnsblVerdict)> done) {
  const config::Dnsbl& cfg = state_->cfg;
  auto c = std::make_shared<Check>();
  c->client_text = client.toString();
  c->done = std::move(done);
  c->zones.resize(cfg.zones.size());
  c->pending = cfg.zones.size();
  {
    std::lock_guard lock(state_->registry_mu);
    if (!state_->stopping) {
      c->id = state_->next_id++;
      c->deadline = Clock::now() + std::chrono::milliseconds(cfg.timeout_ms);
      if (state_->checks.empty()) state_->wake.notify_one();  // otherwise an earlier deadline is awaited
      state_->checks.emplace(c->id, c);
    }
  }
  if (c->id == 0) {  // only from a `done` callback while the destructor drains (see dnsbl.h)
    auto d = std::move(c->done);
    d(cancelledVerdict());
    return;
  }
  for (size_t i = 0; i < cfg.zones.size(); ++i) {
    // The callback may run inline (a cached answer); it takes c->mu, not held here.
    resolver_.a(queryName(client, cfg.zones[i].name),
                [state = state_, c, i](dns::AddressAnswer a) { state->answer(*c, i, a); });
  }
}

void Dnsbl::Impl::runDeadlines() {
  util::setThreadName(kThreadName);
  DnsblState& s = *state_;
  std::unique_lock lock(s.registry_mu);
  while (!s.stopping) {
    if (s.checks.empty()) {
      s.wake.wait(lock);
      continue;
    }
    Clock::time_point now = Clock::now();
    if (s.checks.begin()->second->deadline > now) {
      s.wake.wait_until(lock, s.checks.begin()->second->deadline);
      continue;
    }
    // Taken out of the registry here, so the loop never sees them again while they finish.
    std::vector<std::shared_ptr<Check>> expired;
    while (!s.checks.empty() && s.checks.begin()->second->deadline <= now) {
      expired.push_back(std::move(s.checks.begin()->second));
      s.checks.erase(s.checks.begin());
    }
    lock.unlock();
    for (auto& c : expired) s.expire(*c, /*quiet=*/false);
    lock.lock();
  }
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Dnsbl>> Dnsbl::create(const config::Dnsbl& cfg, dns::Resolver& shared) {
  if (cfg.zones.empty()) return std::unique_ptr<Dnsbl>(new Dnsbl(nullptr));
  if (cfg.timeout_ms == 0) return Status::invalid("dnsbl: the timeout must be positive");
  std::unique_ptr<dns::Resolver> own;
  if (cfg.resolver) {
    dns::ResolverOptions o;
    o.servers = {*cfg.resolver};
    o.timeout = std::chrono::milliseconds(cfg.timeout_ms);
    auto r = dns::Resolver::create(std::move(o));
    if (!r) return Status::invalid(fmt::format("dnsbl: resolver {}: {}", cfg.resolver->toString(), r.status().message()));
    own = std::move(r.value());
  }
  dns::Resolver& use = own ? *own : shared;
  auto impl = std::make_unique<Impl>(std::make_shared<DnsblState>(cfg), std::move(own), use);
  return std::unique_ptr<Dnsbl>(new Dnsbl(std::move(impl)));
}

Dnsbl::Dnsbl(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Dnsbl::~Dnsbl() = default;  // Impl's destructor ends every pending check (see dnsbl.h)

void Dnsbl::check(const IpAddress& client, std::function<void(DnsblVerdict)> done) {
  if (!impl_) {
    done(DnsblVerdict{});
    return;
  }
  impl_->check(client, std::move(done));
}

}  // namespace postern::protect
