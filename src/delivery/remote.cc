#include "delivery/remote.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <random>

#include <fmt/format.h>

#include "log/log.h"
#include "smtp/client/dane.h"
#include "util/thread_name.h"

namespace postern::delivery {

namespace {
using Clock = std::chrono::steady_clock;
namespace sc = smtp::client;

// One message's remote recipients in one attempt: reported to the queue once, when every
// part (one per destination and recipient chunk) is done.
struct Attempt {
  spool::Envelope env;
  std::shared_ptr<const std::string> body;
  bool eightbit = false;
  bool smtputf8 = false;
  Report report;
  size_t parts_left = 0;
};

struct Part {
  std::shared_ptr<Attempt> attempt;
  std::vector<uint32_t> recipients;
  std::string srs_from;   // the SRS-rewritten MAIL FROM; empty: the envelope's own
};

struct Dest {
  Destination d;
  std::deque<std::shared_ptr<Part>> waiting;
  unsigned active = 0;                          // worker coroutines
  unsigned limit = 1;                           // concurrency window
  std::vector<asio::steady_timer*> idle;        // workers holding a connection, waiting for work
  Clock::time_point dead_until{};
  std::string dead_reason;
};

// The outcome of trying to reach a destination.
struct Reach {
  std::unique_ptr<sc::Connection> conn;
  std::string peer;                             // "mx.example.org[192.0.2.1]:25"
  std::string tls_policy;                       // "mta-sts" when a policy required verified TLS
  Outcome::Kind kind = Outcome::kTemporary;     // when conn is null
  std::string dsn;
  std::string reason;
  bool dead = false;                            // every host failed: skip the destination for a while
};

bool hasHighBit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

std::string notifyText(uint8_t bits) {
  if (bits & spool::kNotifyNever) return "NEVER";
  std::vector<std::string_view> v;
  if (bits & spool::kNotifySuccess) v.push_back("SUCCESS");
  if (bits & spool::kNotifyFailure) v.push_back("FAILURE");
  if (bits & spool::kNotifyDelay) v.push_back("DELAY");
  return fmt::format("{}", fmt::join(v, ","));
}

sc::TlsMode tlsMode(config::RouteTls t) {
  switch (t) {
    case config::RouteTls::kNone: return sc::TlsMode::kNone;
    case config::RouteTls::kMay:
    case config::RouteTls::kDane: return sc::TlsMode::kMay;   // DANE per host: ClientOptions::dane_tlsa
    case config::RouteTls::kEncrypt: return sc::TlsMode::kEncrypt;
    case config::RouteTls::kVerify:
    case config::RouteTls::kStartTls: return sc::TlsMode::kVerify;
    case config::RouteTls::kImplicit: return sc::TlsMode::kImplicit;
  }
  return sc::TlsMode::kMay;
}

net::tcp::endpoint toAsio(const IpAddress& a, uint16_t port) {
  if (a.isV4()) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(a.bytes(), 4, b.begin());
    return {asio::ip::address_v4(b), port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy_n(a.bytes(), 16, b.begin());
  return {asio::ip::address_v6(b), port};
}

// RFC 7672 §2.2: opportunistic DANE for MX delivery at the levels that are opportunistic
// ("may", the default, and "dane"); "none", "encrypt" and "verify" keep their own rule.
bool daneAllowed(config::RouteTls t) { return t == config::RouteTls::kMay || t == config::RouteTls::kDane; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The enhanced code of a reply, or the class default (RFC 3463 §3.1: X.0.0).
std::string dsnOf(const sc::Reply& r) {
  if (!r.enhanced.empty()) return r.enhanced;
  return r.positive() ? "2.0.0" : r.transient() ? "4.0.0" : "5.0.0";
}
}  // namespace

struct RemoteDeliverer::Impl {
  Impl(spool::Spool& s, dns::Resolver& r, RemoteOptions o, ReportFn rep, Counters* c)
      : spool(s), resolver(r), opt(std::move(o)), report(std::move(rep)), counters(c), work(io.get_executor()) {}

  spool::Spool& spool;
  dns::Resolver& resolver;
  const RemoteOptions opt;
  ReportFn report;
  Counters* counters;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  asio::thread_pool side{1};   // body reads from the spool and reports to the queue
  SSL_CTX* default_ctx = nullptr;
  std::map<std::string, SSL_CTX*> ca_ctx;   // by ca_file
  std::map<std::string, std::pair<std::string, std::string>> credentials;   // auth_file -> user, password
  std::mt19937_64 rng{std::random_device{}()};
  std::unique_ptr<MtaSts> sts;   // null when MTA-STS is off

  // Event-loop thread only.
  std::map<std::string, Dest> dests;

  std::mutex mu;
  std::condition_variable idle_cv;
  size_t in_flight = 0;    // submitted jobs not yet reported
  bool stopped = false;
  RemoteStats stats;

  void count(EventId e) {
    if (counters) counters->inc(e);
  }

  void start(std::shared_ptr<Attempt> a, std::vector<uint32_t> recipients);
  std::string srsSender(const spool::Envelope& env, const spool::Recipient& r) const;
  void enqueue(const Destination& d, std::shared_ptr<Part> p);
  void spawn(Dest& d);
  net::awaitable<void> worker(std::string key);
  net::awaitable<Reach> reach(const Destination& d);
  net::awaitable<Reach> tryAddress(const Destination& d, const std::string& host, const IpAddress& addr,
                                   bool sts_enforce, const std::vector<dns::TlsaData>& dane);
  net::awaitable<Result<std::vector<dns::TlsaData>>> daneFor(const Destination& d, const std::string& host);
  void runTransaction(Part& p, const sc::TransactionResult& r, const std::string& peer, const std::string& tls,
                      bool dsn_passed, const std::string& tls_policy);
  void finishPart(Part& p, std::vector<Outcome> outcomes);
  void failAll(Part& p, Outcome::Kind kind, const std::string& dsn, const std::string& reason,
               const std::string& tls_policy = "");
  sc::ClientOptions clientOptions(const Destination& d, const std::string& tls_name);
};

RemoteDeliverer::RemoteDeliverer(spool::Spool& spool, dns::Resolver& resolver, RemoteOptions options, ReportFn report,
                                 Counters* counters)
    : impl_(std::make_unique<Impl>(spool, resolver, std::move(options), std::move(report), counters)) {
  asio::post(impl_->side, [] { util::setThreadName("postern-outfile"); });
  impl_->thread = std::thread([i = impl_.get()] {
    util::setThreadName("postern-smtpout");
    i->io.run();
  });
}

RemoteDeliverer::~RemoteDeliverer() {
  stop();
  if (impl_->default_ctx) SSL_CTX_free(impl_->default_ctx);
  for (auto& [k, c] : impl_->ca_ctx) SSL_CTX_free(c);
}

Status RemoteDeliverer::init(const ReadFile& read) {
  std::string err;
  for (const auto& r : impl_->opt.routes) {
    if (r.tls == config::RouteTls::kDane && !impl_->resolver.trustsAd()) {
      // RFC 7672 §2.1: only a validating resolver on this host can say which answers are
      // secure; without one every answer is insecure and "dane" delivers as "may".
      log::warn("delivery.dane_unavailable")
          .kv("reason", "DANE cannot be used with a non-loopback resolver: set [dns] servers to a validating "
                        "resolver on this host (127.0.0.1 or ::1); tls = \"dane\" delivers as \"may\" meanwhile");
      break;
    }
  }
  impl_->default_ctx = sc::makeClientContext(impl_->opt.ca_file, err);
  if (!impl_->default_ctx) return Status::invalid("outbound TLS: " + err);
  if (impl_->opt.mta_sts) {
    MtaStsOptions so;
    dns::Resolver* r = &impl_->resolver;
    so.txt = [r](std::string name) { return dns::asyncTxt(*r, std::move(name)); };
    so.addresses = [r](std::string host) { return dns::asyncAddresses(*r, std::move(host)); };
    so.port = impl_->opt.mta_sts_port;
    so.ca_file = impl_->opt.ca_file;
    so.cache_file = impl_->opt.mta_sts_cache;
    so.counters = impl_->counters;
    Impl* i = impl_.get();
    so.offload = [i](std::function<void()> f) { asio::post(i->side, std::move(f)); };   // fsync off the SMTP loop
    auto sts = MtaSts::create(std::move(so));
    if (!sts) return Status::invalid("MTA-STS: " + sts.status().message());
    impl_->sts = std::move(sts.value());
  }
  for (const auto& r : impl_->opt.routes) {
    if (!r.ca_file.empty() && !impl_->ca_ctx.count(r.ca_file)) {
      SSL_CTX* c = sc::makeClientContext(r.ca_file, err);
      if (!c) return Status::invalid(fmt::format("route CA bundle {}: {}", r.ca_file, err));
      impl_->ca_ctx[r.ca_file] = c;
    }
    if (!r.auth_file.empty() && !impl_->credentials.count(r.auth_file)) {
      auto text = read(r.auth_file);
      if (!text) return Status::invalid(fmt::format("relay credentials {}: {}", r.auth_file, text.status().message()));
      std::string line = text.value().substr(0, text.value().find('\n'));
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0)
        return Status::invalid(fmt::format("relay credentials {}: the first line must be user:password", r.auth_file));
      impl_->credentials[r.auth_file] = {line.substr(0, colon), line.substr(colon + 1)};
    }
  }
  return Status::ok();
}

void RemoteDeliverer::submit(Job job) {
  {
    std::unique_lock lock(impl_->mu);
    impl_->idle_cv.wait(lock, [&] { return impl_->stopped || impl_->in_flight < kMaxInFlightMessages; });
    if (impl_->stopped) return;
    ++impl_->in_flight;
  }
  auto a = std::make_shared<Attempt>();
  a->env = std::move(job.env);
  a->body = std::move(job.body);
  a->report.queue_id = a->env.queue_id;
  Impl* i = impl_.get();
  // The body is read (when it is not in memory) and scanned off the event loop.
  asio::post(i->side, [i, a, rcpts = std::move(job.recipients)]() mutable {
    if (!a->body) {
      auto b = i->spool.readBody(a->env.queue_id);
      if (!b) {
        for (uint32_t r : rcpts)
          a->report.outcomes.push_back({r, Outcome::kTemporary,
                                        "cannot read the message from the spool: " + b.status().message(), "4.3.0"});
        i->report(std::move(a->report));
        std::lock_guard lock(i->mu);
        --i->in_flight;
        i->idle_cv.notify_all();
        return;
      }
      a->body = std::make_shared<const std::string>(std::move(b.value()));
    }
    a->eightbit = hasHighBit(*a->body);
    a->smtputf8 = hasHighBit(a->env.mail_from);
    for (uint32_t r : rcpts) a->smtputf8 = a->smtputf8 || hasHighBit(a->env.recipients[r].mailbox);
    asio::post(i->io, [i, a, rcpts = std::move(rcpts)]() mutable { i->start(std::move(a), std::move(rcpts)); });
  });
}

// Splits the recipients by destination and transaction size and queues the parts.
void RemoteDeliverer::Impl::start(std::shared_ptr<Attempt> a, std::vector<uint32_t> recipients) {
  // Recipients with and without an SRS sender need transactions of their own.
  struct Group {
    Destination d;
    std::string srs_from;
    std::vector<uint32_t> rcpts;
  };
  std::map<std::pair<std::string, bool>, Group> groups;
  for (uint32_t r : recipients) {
    Destination d = route(opt.routes, a->env.mail_from, a->env.recipients[r].mailbox, opt.remote_port);
    std::string srs_from = srsSender(a->env, a->env.recipients[r]);
    auto& g = groups[{d.key, !srs_from.empty()}];
    if (g.rcpts.empty()) {
      g.d = std::move(d);
      g.srs_from = std::move(srs_from);
    }
    g.rcpts.push_back(r);
  }
  std::vector<std::pair<Destination, std::shared_ptr<Part>>> parts;
  for (auto& [key, g] : groups) {
    if (!g.srs_from.empty()) {
      count("srs.rewritten");
      log::info("srs.rewritten").kv("queue_id", a->env.queue_id).kv("from", a->env.mail_from)
          .kv("srs_from", g.srs_from).kv("destination", g.d.key).kv("recipients", uint64_t(g.rcpts.size()));
    }
    for (size_t at = 0; at < g.rcpts.size(); at += opt.recipients_per_transaction) {
      auto p = std::make_shared<Part>();
      p->attempt = a;
      p->srs_from = g.srs_from;
      size_t end = std::min(g.rcpts.size(), at + opt.recipients_per_transaction);
      p->recipients.assign(g.rcpts.begin() + at, g.rcpts.begin() + end);
      parts.emplace_back(g.d, std::move(p));
    }
  }
  a->parts_left = parts.size();
  if (parts.empty()) {   // nothing remote after all
    a->parts_left = 1;
    Part p{a, {}};
    finishPart(p, {});
    return;
  }
  for (auto& [d, p] : parts) enqueue(d, std::move(p));
}

// The SRS sender for one recipient, or empty when the envelope's sender goes unchanged:
// only mail that an alias forwards off-site, from a sender that is neither null, ours,
// nor excluded, and that forward() can rewrite.
std::string RemoteDeliverer::Impl::srsSender(const spool::Envelope& env, const spool::Recipient& r) const {
  if (!opt.srs || r.local || env.mail_from.empty() || lower(r.address) == lower(r.mailbox)) return {};
  size_t at = env.mail_from.rfind('@');
  if (at == std::string::npos) return {};
  std::string domain = lower(env.mail_from.substr(at + 1));
  if (std::find(opt.srs_exclude_domains.begin(), opt.srs_exclude_domains.end(), domain) != opt.srs_exclude_domains.end())
    return {};
  if (opt.is_local_domain && opt.is_local_domain(domain)) return {};
  auto days = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count() / kSrsSecondsPerDay;
  return opt.srs->forward(env.mail_from, static_cast<uint64_t>(days)).value_or(std::string());
}

void RemoteDeliverer::Impl::enqueue(const Destination& d, std::shared_ptr<Part> p) {
  auto [it, fresh] = dests.try_emplace(d.key);
  Dest& dest = it->second;
  if (fresh) {
    dest.d = d;
    dest.limit = std::max(1u, opt.initial_concurrency);
  }
  if (Clock::now() < dest.dead_until) {
    {
      std::lock_guard lock(mu);
      stats.skipped_dead++;
    }
    count("remote.skipped_dead");
    failAll(*p, Outcome::kTemporary, "4.4.1",
            fmt::format("not tried: {} failed moments ago ({})", d.key, dest.dead_reason));
    return;
  }
  dest.waiting.push_back(std::move(p));
  if (!dest.idle.empty()) {
    asio::steady_timer* t = dest.idle.back();
    dest.idle.pop_back();
    t->cancel();
    return;
  }
  if (dest.active < dest.limit) spawn(dest);
}

void RemoteDeliverer::Impl::spawn(Dest& d) {
  ++d.active;
  asio::co_spawn(io, worker(d.d.key), asio::detached);
}

// One connection's life: takes the destination's waiting transactions one after another,
// keeping the connection for the next one while any come within idle_reuse.
net::awaitable<void> RemoteDeliverer::Impl::worker(std::string key) {
  Dest& d = dests[key];
  std::unique_ptr<sc::Connection> conn;
  std::string peer, tls, tls_policy;
  bool used = false;
  for (;;) {
    if (d.waiting.empty()) {
      if (!conn) break;
      asio::steady_timer t(io);
      t.expires_after(opt.idle_reuse);
      d.idle.push_back(&t);
      co_await t.async_wait(net::use_nothrow);
      std::erase(d.idle, &t);
      if (d.waiting.empty()) break;
    }
    std::shared_ptr<Part> p = std::move(d.waiting.front());
    d.waiting.pop_front();
    if (!conn) {
      Reach r = co_await reach(d.d);
      if (!r.conn) {
        failAll(*p, r.kind, r.dsn, r.reason, r.tls_policy);
        // The same answer holds for everything waiting for this destination.
        while (!d.waiting.empty()) {
          auto q = std::move(d.waiting.front());
          d.waiting.pop_front();
          failAll(*q, r.kind, r.dsn, r.reason, r.tls_policy);
        }
        if (r.dead) {
          d.dead_until = Clock::now() + opt.dead_time;
          d.dead_reason = r.reason;
          d.limit = std::max(1u, d.limit / 2);
          count("remote.connect_failed");
        }
        break;
      }
      conn = std::move(r.conn);
      peer = r.peer;
      tls_policy = r.tls_policy;
      tls = conn->tls() ? conn->tlsInfo().version : "none";
      if (!conn->dane().empty()) tls += " " + conn->dane();   // "TLSv1.3 dane-ee"
      used = false;
      std::lock_guard lock(mu);
      stats.connections++;
    }
    const Attempt& a = *p->attempt;
    sc::Transaction t;
    t.mail_from = p->srs_from.empty() ? a.env.mail_from : p->srs_from;
    for (uint32_t idx : p->recipients) {
      const spool::Recipient& rc = a.env.recipients[idx];
      t.recipients.push_back({rc.mailbox, rc.notify ? notifyText(rc.notify) : std::string(), rc.orcpt});
    }
    t.body = a.body.get();
    t.eightbit = a.eightbit;
    t.smtputf8 = a.smtputf8;
    if (a.env.ret == spool::DsnRet::kFull) t.ret = "FULL";
    else if (a.env.ret == spool::DsnRet::kHdrs) t.ret = "HDRS";
    t.envid = a.env.envid;
    sc::TransactionResult res = co_await conn->send(t);
    {
      std::lock_guard lock(mu);
      stats.transactions++;
      if (used) stats.reused++;
      if (tls != "none") stats.tls++;
    }
    if (tls != "none") count("remote.tls");
    if (used && res.failure && ((!res.mail && (res.failure->kind == sc::Failure::kProtocol ||
                                                res.failure->kind == sc::Failure::kTimeout)) ||
                                (res.mail && res.mail->code == 421))) {
      // A kept connection the server had closed while idle: not this message's fault.
      // Once more on a fresh connection (its failure, if any, then counts).
      log::info("delivery.reuse_lost").kv("relay", peer).kv("reason", res.failure->text());
      conn.reset();
      d.waiting.push_front(std::move(p));
      continue;
    }
    used = true;
    runTransaction(*p, res, peer, tls, conn->capabilities().dsn, tls_policy);
    if (res.failure && !res.reusable) {
      d.limit = std::max(1u, d.limit - 1);
    } else if (d.limit < opt.destination_concurrency) {
      ++d.limit;
      // More waiting than workers: open another connection now that the window grew.
      if (d.waiting.size() > d.idle.size() + 1 && d.active < d.limit) spawn(d);
    }
    if (!res.reusable) conn.reset();
  }
  if (conn) co_await conn->quit();
  --d.active;
  if (!d.waiting.empty() && d.active == 0) spawn(d);
  // Forget an idle destination (nothing waiting, not marked dead) so the map stays small.
  if (d.active == 0 && d.waiting.empty() && Clock::now() >= d.dead_until) dests.erase(key);
}

// The servers of a destination, in order, until one greets us.
net::awaitable<Reach> RemoteDeliverer::Impl::reach(const Destination& d) {
  Reach out;
  std::vector<std::string> hosts;
  bool implicit = false, loop = false;
  bool secure_mx = false;   // RFC 7672 §2.2.1: DANE only below a validated MX RRset (or its NODATA)
  if (d.relay()) {
    hosts.push_back(d.relay_host);
  } else {
    dns::MxAnswer mx = co_await dns::asyncMx(resolver, d.domain);
    if (mx.null_mx) {
      out.kind = Outcome::kPermanent;
      out.dsn = "5.1.10";
      out.reason = fmt::format("{} does not accept mail (null MX, RFC 7505)", d.domain);
      co_return out;
    }
    secure_mx = mx.authenticated && daneAllowed(d.tls);
    switch (mx.outcome) {
      case dns::Outcome::kOk:
      {
        // RFC 5321 §5.1: our own name in the list removes it and every host of equal or
        // higher preference value (we would only relay to ourselves or to backups of us).
        int own = INT_MAX;
        for (const auto& h : mx.hosts)
          if (lower(h.host) == lower(opt.hostname)) own = std::min<int>(own, h.preference);
        for (auto& h : dns::orderMx(std::move(mx.hosts), rng())) {
          if (h.preference >= own) {
            loop = true;
            continue;
          }
          hosts.push_back(std::move(h.host));
        }
      }
        break;
      case dns::Outcome::kNoData:
        hosts.push_back(d.domain);   // RFC 5321 §5.1: no MX, the domain itself is the host
        implicit = true;
        break;
      case dns::Outcome::kNxDomain:
      case dns::Outcome::kPermFail:
        out.kind = Outcome::kPermanent;
        out.dsn = "5.1.2";
        out.reason = fmt::format("domain {} not found (MX lookup: {})", d.domain,
                                 mx.error.empty() ? dns::outcomeName(mx.outcome) : mx.error);
        co_return out;
      case dns::Outcome::kTempFail:
        out.dsn = "4.4.3";
        out.reason = fmt::format("MX lookup for {} failed: {}", d.domain, mx.error);
        co_return out;
    }
  }
  // RFC 8461 §5: the recipient domain's MTA-STS policy decides which MX hosts may be used.
  Policy policy;
  if (sts && !d.relay() && d.tls != config::RouteTls::kNone) policy = co_await sts->policyFor(d.domain);
  const bool enforce = policy.mode == StsMode::kEnforce, testing = policy.mode == StsMode::kTesting;
  if (enforce) out.tls_policy = "mta-sts";
  size_t tried = 0, refused_by_policy = 0;
  bool temp_dns = false;
  std::string last;
  for (const std::string& host : hosts) {
    if (!d.relay() && lower(host) == lower(opt.hostname)) {
      loop = true;   // our own name: never deliver to ourselves
      continue;
    }
    if ((enforce || testing) && !mxAllowed(policy, host)) {
      log::warn("mta_sts.mx_mismatch").kv("domain", d.domain).kv("mx", host).kv("mode", stsModeName(policy.mode))
          .kv("action", enforce ? "host skipped" : "delivered anyway (testing)");
      if (enforce) {
        ++refused_by_policy;
        last = fmt::format("{} is not an MX host allowed by the MTA-STS policy of {} (id {})", host, d.domain, policy.id);
        continue;
      }
    }
    std::vector<IpAddress> addrs;
    std::vector<dns::TlsaData> dane;   // usable, validated TLSA records: DANE required for this host
    if (auto ip = IpAddress::parse(host)) {
      addrs.push_back(*ip);
    } else {
      dns::AddressAnswer aa = co_await dns::asyncAddresses(resolver, host);
      if (aa.outcome == dns::Outcome::kTempFail) temp_dns = true;
      if (aa.outcome != dns::Outcome::kOk) {
        last = fmt::format("{}: address lookup: {}", host, aa.error.empty() ? dns::outcomeName(aa.outcome) : aa.error);
        continue;
      }
      addrs = std::move(aa.addresses);
      // RFC 7672 §2.2.2: TLSA records only for hosts whose addresses are secure too.
      if (secure_mx && aa.authenticated) {
        auto tlsa = co_await daneFor(d, host);
        if (!tlsa) {
          temp_dns = true;
          last = tlsa.status().message();
          continue;
        }
        dane = std::move(tlsa.value());
      }
    }
    for (const IpAddress& a : addrs) {
      if (tried++ == kMaxAddresses) break;
      Reach r = co_await tryAddress(d, host, a, enforce, dane);
      if (r.conn) co_return r;
      last = r.reason;
    }
    if (tried >= kMaxAddresses) break;
  }
  if (tried == 0 && refused_by_policy > 0 && !temp_dns) {
    // RFC 8461 §5: no host may be used; deliver nothing and try again later (4.7.5).
    out.dsn = "4.7.5";
    out.reason = last;
    co_return out;
  }
  if (tried == 0 && d.relay()) {
    // A relay that does not resolve is a configuration problem the operator can fix: wait.
    out.dsn = "4.4.3";
    out.reason = fmt::format("relay host {} has no address ({})", d.relay_host, last);
    co_return out;
  }
  if (tried == 0 && !temp_dns) {
    out.kind = Outcome::kPermanent;
    if (loop) {
      out.dsn = "5.4.6";
      out.reason = fmt::format("mail for {} loops back to myself", d.domain);
    } else {
      out.dsn = implicit ? "5.1.2" : "5.4.4";
      out.reason = implicit ? fmt::format("{} has no MX and no address ({})", d.domain, last)
                            : fmt::format("no MX host of {} has an address ({})", d.domain, last);
    }
    co_return out;
  }
  out.dsn = tried == 0 ? "4.4.3" : "4.4.1";
  out.reason = last.empty() ? fmt::format("no server of {} could be reached", d.key) : last;
  out.dead = tried > 0;
  co_return out;
}

// RFC 7672 §2.2.3: the TLSA records of one MX host, looked up at _<port>._tcp.<host>: the
// usable ones of a validated answer (DANE then required for the host); none for a secure
// NXDOMAIN/NODATA, an insecure answer or no usable record (opportunistic TLS). A failed
// lookup is an error: the host is skipped as a temporary failure, since a lookup that fails
// only for TLSA may be an attack that strips DANE (§2.2).
net::awaitable<Result<std::vector<dns::TlsaData>>> RemoteDeliverer::Impl::daneFor(const Destination& d,
                                                                                 const std::string& host) {
  const std::string name = fmt::format("_{}._tcp.{}", d.port, host);
  dns::TlsaAnswer t = co_await dns::asyncTlsa(resolver, name);
  if (t.outcome == dns::Outcome::kTempFail || t.outcome == dns::Outcome::kPermFail) {
    count("remote.dane_tlsa_tempfail");
    std::string why = fmt::format("{}: TLSA lookup for {} failed ({}): host skipped, DANE cannot be ruled out", host,
                                  name, t.error.empty() ? dns::outcomeName(t.outcome) : t.error);
    log::info("delivery.dane_lookup_failed").kv("domain", d.domain).kv("host", host).kv("reason", why);
    co_return Status::io(std::move(why));
  }
  if (t.outcome == dns::Outcome::kOk && t.authenticated) co_return sc::usableTlsa(t.records);
  co_return std::vector<dns::TlsaData>{};
}

sc::ClientOptions RemoteDeliverer::Impl::clientOptions(const Destination& d, const std::string& tls_name) {
  sc::ClientOptions o;
  o.helo_name = opt.hostname;
  o.tls = tlsMode(d.tls);
  auto c = d.ca_file.empty() ? ca_ctx.end() : ca_ctx.find(d.ca_file);
  o.tls_ctx = c == ca_ctx.end() ? default_ctx : c->second;
  o.tls_name = tls_name;
  if (auto cr = credentials.find(d.auth_file); !d.auth_file.empty() && cr != credentials.end()) {
    o.auth_user = cr->second.first;
    o.auth_password = cr->second.second;
  }
  o.timeouts = opt.timeouts;
  return o;
}

net::awaitable<Reach> RemoteDeliverer::Impl::tryAddress(const Destination& d, const std::string& host,
                                                       const IpAddress& addr, bool sts_enforce,
                                                       const std::vector<dns::TlsaData>& dane) {
  Reach out;
  out.peer = fmt::format("{}[{}]:{}", host, addr.toString(), d.port);
  sc::ClientOptions o = clientOptions(d, host);
  if (sts_enforce) {
    // RFC 8461 §4.2: STARTTLS with a certificate valid for the MX host's name, no fallback.
    o.tls = sc::TlsMode::kVerify;
    out.tls_policy = "mta-sts";
  }
  o.dane_tlsa = dane;   // non-empty: STARTTLS and a certificate matching the records required
  auto [conn, failure] = co_await sc::Connection::open(toAsio(addr, d.port), o);
  if (!dane.empty() && conn) {
    count("remote.dane_verified");
    log::info("delivery.dane_verified").kv("relay", out.peer).kv("dane", conn->dane());
  } else if (!dane.empty() && failure && failure->kind == sc::Failure::kTls) {
    count("remote.dane_failed");
  }
  // DANE never falls back to plaintext (RFC 7672 §2.2): the next host is tried instead.
  if (!conn && failure && failure->kind == sc::Failure::kTls && o.tls == sc::TlsMode::kMay && dane.empty()) {
    // Opportunistic TLS that fails is not worse than none (RFC 7435 §1.3): once more in plaintext.
    log::info("delivery.tls_fallback").kv("relay", out.peer).kv("reason", failure->text());
    o.tls = sc::TlsMode::kNone;
    std::tie(conn, failure) = co_await sc::Connection::open(toAsio(addr, d.port), o);
  }
  if (conn) {
    conn->setPeerName(out.peer);
    out.conn = std::move(conn);
    co_return out;
  }
  out.reason = fmt::format("{}: {}{}", out.peer, failure ? failure->text() : std::string("no connection"),
                           sts_enforce ? " (TLS required by the MTA-STS policy)" : "");
  log::info("delivery.connect_failed").kv("relay", out.peer).kv("reason", failure ? failure->text() : "no connection");
  co_return out;
}

void RemoteDeliverer::Impl::runTransaction(Part& p, const sc::TransactionResult& r, const std::string& peer,
                                           const std::string& tls, bool dsn_passed, const std::string& tls_policy) {
  std::vector<Outcome> out;
  auto fromReply = [&](uint32_t idx, const sc::Reply& rep, std::string_view stage) {
    Outcome o{idx, rep.positive() ? Outcome::kDelivered : rep.transient() ? Outcome::kTemporary : Outcome::kPermanent,
              "", dsnOf(rep), peer, tls};
    o.reason = rep.positive() ? rep.text() : fmt::format("{} said: {} (in reply to {})", peer, rep.text(), stage);
    o.reply = rep.text();
    o.dsn_passed = dsn_passed;
    o.tls_policy = tls_policy;
    out.push_back(std::move(o));
  };
  for (size_t i = 0; i < p.recipients.size(); ++i) {
    uint32_t idx = p.recipients[i];
    if (r.mail && !r.mail->positive()) {
      fromReply(idx, *r.mail, "MAIL FROM");
    } else if (i < r.rcpt.size() && !r.rcpt[i].positive()) {
      fromReply(idx, r.rcpt[i], "RCPT TO");
    } else if (r.data && !r.failure) {
      fromReply(idx, *r.data, "end of DATA");
    } else {
      const std::string why = r.failure ? r.failure->text() : std::string("no reply to the message data");
      bool perm = r.failure && r.failure->permanent();
      std::string dsn = r.failure && r.failure->reply ? dsnOf(*r.failure->reply) : (perm ? "5.0.0" : "4.4.2");
      out.push_back({idx, perm ? Outcome::kPermanent : Outcome::kTemporary, fmt::format("{}: {}", peer, why), dsn,
                     peer, tls, r.failure && r.failure->reply ? r.failure->reply->text() : std::string()});
    }
  }
  for (auto& o : out) o.tls_policy = tls_policy;
  finishPart(p, std::move(out));
}

void RemoteDeliverer::Impl::failAll(Part& p, Outcome::Kind kind, const std::string& dsn, const std::string& reason,
                                    const std::string& tls_policy) {
  std::vector<Outcome> out;
  for (uint32_t idx : p.recipients) {
    out.push_back({idx, kind, reason, dsn, "", ""});
    out.back().tls_policy = tls_policy;
  }
  finishPart(p, std::move(out));
}

void RemoteDeliverer::Impl::finishPart(Part& p, std::vector<Outcome> outcomes) {
  uint64_t ok = 0, temp = 0, perm = 0;
  for (const auto& o : outcomes) {
    (o.kind == Outcome::kDelivered ? ok : o.kind == Outcome::kTemporary ? temp : perm)++;
  }
  if (counters) {
    counters->inc("remote.delivered", ok);
    counters->inc("remote.deferred", temp);
    counters->inc("remote.failed", perm);
  }
  {
    std::lock_guard lock(mu);
    stats.delivered += ok;
    stats.deferred += temp;
    stats.failed += perm;
  }
  Attempt& a = *p.attempt;
  for (auto& o : outcomes) a.report.outcomes.push_back(std::move(o));
  if (--a.parts_left > 0) return;
  asio::post(side, [this, a = p.attempt] {
    report(std::move(a->report));
    std::lock_guard lock(mu);
    --in_flight;
    idle_cv.notify_all();
  });
}

void RemoteDeliverer::drain() {
  std::unique_lock lock(impl_->mu);
  impl_->idle_cv.wait(lock, [&] { return impl_->in_flight == 0 || impl_->stopped; });
}

void RemoteDeliverer::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->idle_cv.notify_all();
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->side.join();
}

RemoteStats RemoteDeliverer::stats() {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

}  // namespace postern::delivery
