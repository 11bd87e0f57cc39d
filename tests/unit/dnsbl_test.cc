// DNS blocklists (RFC 5782): the query name and the meaning of answers as tables, then the
// live class through the shared DNS layer (dns::Resolver, real c-ares) against
// tests/e2e/dns_server.py in a subprocess (dns_test_server.h), serving the zone below.
#include "protect/dnsbl.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "dns_test_server.h"

namespace postern::protect {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress());
}

config::DnsblZone zone(std::string name, bool reject = true, int score = 1, std::vector<std::string> codes = {}) {
  config::DnsblZone z;
  z.name = std::move(name);
  z.reject = reject;
  z.score = score;
  for (const auto& c : codes) z.codes.push_back(ip(c));
  return z;
}

// ---------------------------------------------------------------------------------------
// Pure helpers

TEST(DnsblQueryName, Ipv4ReversedOctets) {
  EXPECT_EQ(queryName(ip("192.0.2.5"), "zen.example"), "5.2.0.192.zen.example");
  EXPECT_EQ(queryName(ip("127.0.0.2"), "bl.test"), "2.0.0.127.bl.test");
  EXPECT_EQ(queryName(ip("10.20.30.255"), "zen.example."), "255.30.20.10.zen.example");  // trailing dot dropped
  // A dual-stack listener's IPv4-mapped address is looked up as the IPv4 address it is.
  EXPECT_EQ(queryName(ip("::ffff:192.0.2.5"), "zen.example"), "5.2.0.192.zen.example");
}

TEST(DnsblQueryName, Ipv6ReversedNibbles) {
  // RFC 5782 §2.4 example.
  EXPECT_EQ(queryName(ip("2001:db8:1:2:3:4:567:89ab"), "ugly.example.com"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
  EXPECT_EQ(queryName(ip("2001:db8::1"), "zen.example"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example");
  EXPECT_EQ(queryName(ip("::1"), "x"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.x");
}

TEST(DnsblClassify, Table) {
  const config::DnsblZone any = zone("any.example");
  const config::DnsblZone zen = zone("zen.example", true, 1, {"127.0.0.2", "127.0.0.3", "127.0.0.4"});
  struct Case {
    const config::DnsblZone* zone;
    const char* answer;
    Answer want;
  };
  const Case cases[] = {
      // No codes: anything in 127/8 is a listing...
      {&any, "127.0.0.2", Answer::kListed},
      {&any, "127.0.0.11", Answer::kListed},
      {&any, "127.1.2.3", Answer::kListed},
      {&any, "127.255.254.1", Answer::kListed},
      // ...except 127.255.255.x, the operator refusing our resolver.
      {&any, "127.255.255.254", Answer::kResolverRefused},
      {&any, "127.255.255.252", Answer::kResolverRefused},
      {&any, "127.255.255.255", Answer::kResolverRefused},
      {&any, "127.255.255.0", Answer::kResolverRefused},
      // Outside 127/8: not an answer a list gives (wildcarding resolver, expired list domain).
      {&any, "10.0.0.1", Answer::kInvalid},
      {&any, "192.0.2.1", Answer::kInvalid},
      {&any, "128.0.0.2", Answer::kInvalid},
      {&any, "0.0.0.0", Answer::kInvalid},
      {&any, "::1", Answer::kInvalid},
      {&any, "2001:db8::2", Answer::kInvalid},
      // Codes given: only those count.
      {&zen, "127.0.0.2", Answer::kListed},
      {&zen, "127.0.0.4", Answer::kListed},
      {&zen, "127.0.0.10", Answer::kNotListed},  // e.g. Spamhaus PBL when only SBL/XBL are wanted
      {&zen, "127.0.0.1", Answer::kNotListed},
      {&zen, "127.0.1.2", Answer::kNotListed},
      {&zen, "127.255.255.254", Answer::kResolverRefused},
      {&zen, "8.8.8.8", Answer::kInvalid},
  };
  for (const Case& c : cases) EXPECT_EQ(classify(*c.zone, ip(c.answer)), c.want) << c.zone->name << " " << c.answer;
  // 127.255.255.x stays "refused" even if someone lists it as a code.
  EXPECT_EQ(classify(zone("odd", true, 1, {"127.255.255.254"}), ip("127.255.255.254")), Answer::kResolverRefused);
}

// ---------------------------------------------------------------------------------------
// Live: the zones' answers, one name per case. A records 127.0.0.x list, names not here are
// NXDOMAIN (with an SOA: cached by the resolver for a minute), "*.slow.example" never
// answers, "*.broken.example" SERVFAILs and "*.refusing.example" REFUSEs.

const char* kZone = R"({
  "records": {
    "5.2.0.192.zen.example": [["A", "127.0.0.2"]],
    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.example": [["A", "127.0.0.2"]],
    "1.2.0.192.a.example": [["A", "127.0.0.2"]],
    "1.2.0.192.b.example": [["A", "127.0.0.2"]],
    "2.2.0.192.a.example": [["A", "127.0.0.2"]],
    "1.2.0.192.s.example": [["A", "127.0.0.2"]],
    "1.2.0.192.r.example": [["A", "127.0.0.3"]],
    "1.2.0.192.codes.example": [["A", "127.0.0.10"]],
    "2.2.0.192.codes.example": [["A", "127.0.0.10"], ["A", "127.0.0.4"]],
    "2.2.0.192.any.example": [["A", "127.0.0.2"], ["A", "127.0.0.4"]],
    "5.2.0.192.spamhaus.example": [["A", "127.255.255.254"]],
    "5.2.0.192.wild.example": [["A", "198.51.100.7"]],
    "1.2.0.192.many.example": [["A", "127.0.0.2"]],
    "7.2.0.192.cached.example": [["A", "127.0.0.2", 300]]
  },
  "ignore": ["*.slow.example"],
  "servfail": ["*.broken.example"],
  "refused": ["*.refusing.example"],
  "negative_ttl": 60
})";

struct Outcome {
  DnsblVerdict verdict;
  std::thread::id thread;
  std::chrono::milliseconds elapsed;
};

// Runs one check and waits for its verdict (the test fails rather than hangs).
Outcome run(Dnsbl& d, std::string_view client) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  auto start = Clock::now();
  auto calls = std::make_shared<std::atomic<int>>(0);
  d.check(ip(client), [promise, start, calls](DnsblVerdict v) {
    if (calls->fetch_add(1) != 0) {
      ADD_FAILURE() << "done called twice";
      return;
    }
    promise->set_value(Outcome{std::move(v), std::this_thread::get_id(),
                               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)});
  });
  EXPECT_EQ(future.wait_for(10s), std::future_status::ready) << "no verdict for " << client;
  return future.wait_for(0s) == std::future_status::ready ? future.get() : Outcome{};
}

class DnsblLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new test::DnsTestServer;
    if (!server_->start(kZone, &server_error_)) {
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << server_error_;
    // The shared resolver's timeout is longer than any check's here, so the checks' own
    // deadlines are what ends a silent zone.
    dns::ResolverOptions o;
    o.servers = {server_->endpoint()};
    o.timeout = 5s;
    auto r = dns::Resolver::create(o);
    ASSERT_TRUE(r) << r.status().message();
    resolver_ = std::move(r.value());
  }

  // A Dnsbl on the shared resolver_ (no [protect.dnsbl] resolver).
  std::unique_ptr<Dnsbl> make(std::vector<config::DnsblZone> zones, int threshold = 1, uint64_t timeout_ms = 2000) {
    config::Dnsbl cfg;
    cfg.zones = std::move(zones);
    cfg.threshold = threshold;
    cfg.timeout_ms = timeout_ms;
    auto r = Dnsbl::create(cfg, *resolver_);
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(r).value() : nullptr;
  }
  uint64_t queries() { return resolver_->stats().queries; }

  static test::DnsTestServer* server_;
  static std::string server_error_;
  std::unique_ptr<dns::Resolver> resolver_;  // outlives the Dnsbl objects of each test
};

test::DnsTestServer* DnsblLive::server_ = nullptr;
std::string DnsblLive::server_error_;

TEST_F(DnsblLive, ListedInRejectZoneRejectsNamingTheZone) {
  auto d = make({zone("zen.example")});
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "zen.example");
  EXPECT_EQ(o.verdict.listed, std::vector<std::string>{"zen.example=127.0.0.2"});
  EXPECT_FALSE(o.verdict.failed_open);
  EXPECT_NE(o.thread, std::this_thread::get_id());  // the resolver's thread: nothing was cached
  EXPECT_EQ(queries(), 1u);                          // through the shared resolver
}

TEST_F(DnsblLive, UnlistedIsNotRejected) {
  auto d = make({zone("zen.example")});
  Outcome o = run(*d, "192.0.2.6");  // NXDOMAIN
  EXPECT_FALSE(o.verdict.reject);
  EXPECT_TRUE(o.verdict.zone.empty());
  EXPECT_TRUE(o.verdict.listed.empty());
  EXPECT_FALSE(o.verdict.failed_open);
  EXPECT_EQ(queries(), 1u);
}

TEST_F(DnsblLive, AnswersAreCachedByTheSharedResolver) {
  auto d = make({zone("cached.example")});
  Outcome first = run(*d, "192.0.2.7");
  EXPECT_TRUE(first.verdict.reject);
  Outcome nx = run(*d, "192.0.2.8");  // NXDOMAIN, cached for the SOA's negative TTL
  EXPECT_FALSE(nx.verdict.reject);
  EXPECT_FALSE(nx.verdict.failed_open);
  EXPECT_EQ(queries(), 2u);
  // Both again: answered from the cache, inline on this thread, no query sent.
  Outcome again = run(*d, "192.0.2.7");
  EXPECT_TRUE(again.verdict.reject);
  EXPECT_EQ(again.verdict.listed, std::vector<std::string>{"cached.example=127.0.0.2"});
  EXPECT_EQ(again.thread, std::this_thread::get_id());
  EXPECT_FALSE(run(*d, "192.0.2.8").verdict.reject);
  EXPECT_EQ(queries(), 2u);
  EXPECT_EQ(resolver_->stats().cache_hits, 2u);
  // Another Dnsbl on the same resolver (e.g. after a restart of the protection) shares it.
  auto d2 = make({zone("cached.example")});
  EXPECT_TRUE(run(*d2, "192.0.2.7").verdict.reject);
  EXPECT_EQ(queries(), 2u);
}

TEST_F(DnsblLive, Ipv6ClientIsLookedUpByNibbles) {
  auto d = make({zone("v6.example")});
  EXPECT_TRUE(run(*d, "2001:db8::5").verdict.reject);
  EXPECT_FALSE(run(*d, "2001:db8::6").verdict.reject);
}

TEST_F(DnsblLive, ScoreZonesSumToTheThreshold) {
  auto d = make({zone("a.example", false, 1), zone("b.example", false, 2), zone("c.example", false, 5)}, 3);
  Outcome both = run(*d, "192.0.2.1");
  EXPECT_TRUE(both.verdict.reject);
  EXPECT_EQ(both.verdict.score, 3);
  EXPECT_EQ(both.verdict.zone, "b.example");  // the listing that reached the threshold
  EXPECT_EQ(both.verdict.listed, (std::vector<std::string>{"a.example=127.0.0.2", "b.example=127.0.0.2"}));
  Outcome one = run(*d, "192.0.2.2");
  EXPECT_FALSE(one.verdict.reject);
  EXPECT_EQ(one.verdict.score, 1);
  EXPECT_EQ(one.verdict.listed, std::vector<std::string>{"a.example=127.0.0.2"});
  EXPECT_FALSE(run(*d, "192.0.2.3").verdict.reject);
}

TEST_F(DnsblLive, RejectZoneDecidesBeforeScores) {
  auto d = make({zone("s.example", false, 10), zone("r.example")}, 1);
  Outcome o = run(*d, "192.0.2.1");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "r.example");
  EXPECT_EQ(o.verdict.score, 10);
}

TEST_F(DnsblLive, AnswerCodesPerZone) {
  auto d =
      make({zone("codes.example", true, 1, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}), zone("any.example", false)}, 5);
  Outcome pbl = run(*d, "192.0.2.1");  // PBL only
  EXPECT_FALSE(pbl.verdict.reject);
  EXPECT_TRUE(pbl.verdict.listed.empty());
  EXPECT_FALSE(pbl.verdict.failed_open);
  Outcome xbl = run(*d, "192.0.2.2");  // PBL and XBL
  EXPECT_TRUE(xbl.verdict.reject);
  EXPECT_EQ(xbl.verdict.zone, "codes.example");
  // The records' order as the server sent them; the resolver keeps it.
  std::vector<std::string> listed = xbl.verdict.listed;
  EXPECT_EQ(listed,
            (std::vector<std::string>{"codes.example=127.0.0.4", "any.example=127.0.0.2", "any.example=127.0.0.4"}));
  EXPECT_EQ(xbl.verdict.score, 1);  // one zone, one score however many codes
}

TEST_F(DnsblLive, SilentZoneFailsOpenAtTheCheckTimeoutWhileAnotherDecides) {
  constexpr uint64_t kTimeoutMs = 400;  // the resolver's own timeout is 5 s
  auto d = make({zone("slow.example"), zone("zen.example")}, 1, kTimeoutMs);
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "zen.example");
  EXPECT_TRUE(o.verdict.failed_open);
  EXPECT_GE(o.elapsed.count(), static_cast<int64_t>(kTimeoutMs) - 5);
  EXPECT_LT(o.elapsed.count(), static_cast<int64_t>(kTimeoutMs) + 500);
  // The same silence for an unlisted client: fail open, accepted.
  Outcome clean = run(*d, "192.0.2.6");
  EXPECT_FALSE(clean.verdict.reject);
  EXPECT_TRUE(clean.verdict.failed_open);
  EXPECT_LT(clean.elapsed.count(), static_cast<int64_t>(kTimeoutMs) + 500);
}

TEST_F(DnsblLive, ServfailAndRefusedFailOpenWithoutWaiting) {
  auto d = make({zone("broken.example"), zone("refusing.example")}, 1, 5000);
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_FALSE(o.verdict.reject);
  EXPECT_TRUE(o.verdict.failed_open);
  EXPECT_LT(o.elapsed.count(), 2500);  // answers, not the deadline
  EXPECT_EQ(queries(), 2u);
  // Temporary failures are not cached: asked again.
  EXPECT_TRUE(run(*d, "192.0.2.5").verdict.failed_open);
  EXPECT_EQ(queries(), 4u);
}

TEST_F(DnsblLive, ResolverRefusedCodeIsIgnored) {
  // spamhaus: 127.255.255.254; wild: a resolver that wildcards NXDOMAIN; other: NXDOMAIN.
  auto d = make({zone("spamhaus.example"), zone("wild.example"), zone("other.example")});
  for (int i = 0; i < 3; ++i) {  // repeated: logged once per zone per minute, ignored every time
    Outcome o = run(*d, "192.0.2.5");
    EXPECT_FALSE(o.verdict.reject);
    EXPECT_TRUE(o.verdict.listed.empty());
    EXPECT_TRUE(o.verdict.failed_open);
  }
}

TEST_F(DnsblLive, ManyConcurrentChecksEachCompleteOnce) {
  auto d = make({zone("many.example"), zone("other.example")});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<int> calls{0}, rejects{0};
  std::promise<void> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        IpAddress client = ip("192.0.2." + std::to_string(1 + (t * kPerThread + i) % 3));
        d->check(client, [&](DnsblVerdict v) {
          if (v.reject) rejects.fetch_add(1);
          if (calls.fetch_add(1) + 1 == kThreads * kPerThread) all.set_value();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  auto f = all.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  d.reset();  // no more calls after this
  EXPECT_EQ(calls.load(), kThreads * kPerThread);
  int listed = 0;
  for (int k = 0; k < kThreads * kPerThread; ++k) listed += k % 3 == 0;
  EXPECT_EQ(rejects.load(), listed);
  // Identical lookups in flight share one query, later ones hit the cache (NXDOMAIN too):
  // one query per name (3 clients, 2 zones) for the 400 lookups.
  EXPECT_EQ(queries(), 6u);
}

TEST_F(DnsblLive, DestructionFailsOpenPendingChecksOnce) {
  auto d = make({zone("zen.example"), zone("slow.example")}, 1, 60'000);
  std::atomic<int> calls{0};
  DnsblVerdict got;
  d->check(ip("192.0.2.5"), [&](DnsblVerdict v) {
    calls.fetch_add(1);
    got = std::move(v);
  });
  // Wait (by observation, not a fixed sleep) until both queries went out.
  auto until = Clock::now() + 10s;
  while (queries() < 2 && Clock::now() < until) std::this_thread::yield();
  auto start = Clock::now();
  d.reset();
  EXPECT_LT(Clock::now() - start, 2s);  // not the 60 s timeout
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(got.failed_open);
  // The shared resolver still held the silent zone's query: its end ("shutting down")
  // reaches no callback.
  resolver_.reset();
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(DnsblLive, OwnResolverWhenConfigured) {
  // [protect.dnsbl] resolver: a resolver of the Dnsbl's own, asking that server; the shared
  // one (here pointing nowhere useful) is not used.
  config::Dnsbl cfg;
  cfg.zones = {zone("zen.example")};
  cfg.resolver = server_->endpoint();
  cfg.timeout_ms = 2000;
  dns::ResolverOptions o;
  o.servers = {Endpoint{ip("127.0.0.1"), 9}};  // discard: never answers
  o.timeout = 5s;
  auto unused = dns::Resolver::create(o);
  ASSERT_TRUE(unused);
  auto r = Dnsbl::create(cfg, *unused.value());
  ASSERT_TRUE(r) << r.status().message();
  Outcome o1 = run(*r.value(), "192.0.2.5");
  EXPECT_TRUE(o1.verdict.reject);
  EXPECT_FALSE(o1.verdict.failed_open);
  EXPECT_EQ(unused.value()->stats().queries, 0u);
}

TEST(DnsblNoZones, DoneRunsInline) {
  dns::ResolverOptions o;
  o.servers = {Endpoint{ip("127.0.0.1"), 9}};  // discard: never asked
  auto resolver = dns::Resolver::create(o);
  ASSERT_TRUE(resolver);
  auto r = Dnsbl::create(config::Dnsbl{}, *resolver.value());
  ASSERT_TRUE(r);
  bool called = false;
  r.value()->check(ip("192.0.2.5"), [&](DnsblVerdict v) {
    called = true;
    EXPECT_FALSE(v.reject);
    EXPECT_FALSE(v.failed_open);
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(resolver.value()->stats().queries, 0u);
}

TEST(DnsblNoServer, UnreachableResolverFailsOpen) {
  // A port nothing listens on: ICMP port unreachable (connection refused) or a timeout.
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  uint16_t port = ntohs(sa.sin_port);
  ::close(fd);
  dns::ResolverOptions o;
  o.servers = {Endpoint{ip("127.0.0.1"), port}};
  o.timeout = 500ms;
  auto resolver = dns::Resolver::create(o);
  ASSERT_TRUE(resolver);
  config::Dnsbl cfg;
  cfg.zones = {zone("zen.example")};
  cfg.timeout_ms = 500;
  auto r = Dnsbl::create(cfg, *resolver.value());
  ASSERT_TRUE(r);
  std::promise<DnsblVerdict> p;
  r.value()->check(ip("192.0.2.5"), [&](DnsblVerdict v) { p.set_value(std::move(v)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  DnsblVerdict v = f.get();
  EXPECT_FALSE(v.reject);
  EXPECT_TRUE(v.failed_open);
}

}  // namespace
}  // namespace postern::protect
