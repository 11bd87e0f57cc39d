// The resolver against a real DNS responder: tests/e2e/dns_server.py in a subprocess,
// started once for the suite with the zone below (dns_test_server.h), on a loopback UDP port.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "dns/resolver.h"
#include "dns_test_server.h"

namespace postern::dns {
namespace {

using namespace std::chrono_literals;

// Names and what the server does with them. "chain.example" ends its answer at
// "hop.example" (no_chase), so the resolver must ask again for mx1.example.org.
const char* kZone = R"({
  "records": {
    "example.org": [["MX", "10 mx1.example.org"], ["MX", "20 mx2.example.org"], ["MX", "10 MX3.Example.Org."]],
    "mx1.example.org": [["A", "127.0.0.5"], ["AAAA", "::5"]],
    "mx2.example.org": [["A", "127.0.0.6"]],
    "null.example": [["MX", "0 ."]],
    "nomx.example": [["A", "127.0.0.7"]],
    "alias.example": [["CNAME", "mx1.example.org"]],
    "mxalias.example": [["CNAME", "example.org"]],
    "chain.example": [["CNAME", "hop.example"]],
    "hop.example": [["CNAME", "mx1.example.org"]],
    "loop1.example": [["CNAME", "loop2.example"]],
    "loop2.example": [["CNAME", "loop1.example"]],
    "txt.example": [["TXT", ["v=spf1 ", "ip4:192.0.2.0/24 ", "-all"]], ["TXT", "second"]],
    "short.example": [["A", "127.0.0.8", 1]],
    "big.example": [["TXT", "LONGTEXT"]],
    "halfbroken.example": [["A", "127.0.0.9"]],
    "_25._tcp.mx1.example.org": [["TLSA", "3 1 1 0a0b0c"]],
    "zone.example": [["SOA", "ns.zone.example host.zone.example 1 3600 600 86400 1", 1]],
    "signed.example": [["MX", "10 mx1.example.org"]],
    "salias.example": [["CNAME", "mx1.example.org"]],
    "halfsigned.example": [["CNAME", "mx2.example.org"]],
    "5.0.0.127.in-addr.arpa": [["PTR", "mx1.example.org"], ["PTR", "Other.Example."]],
    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa": [["PTR", "mx1.example.org"]]
  },
  "secure": ["signed.example", "mx1.example.org", "_25._tcp.mx1.example.org", "salias.example",
             "halfsigned.example", "*.signed.example"],
  "servfail": ["servfail.example", "halfbroken.example/AAAA"],
  "refused": ["refused.example"],
  "ignore": ["timeout.example"],
  "no_chase": ["hop.example"],
  "negative_ttl": 60
})";

class DnsResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new test::DnsTestServer;
    std::string zone = kZone;
    zone.replace(zone.find("LONGTEXT"), 8, std::string(700, 'k'));   // 3 character-strings, > 512 bytes
    if (!server_->start(zone, &server_error_)) {
      server_->stop();
      delete server_;
      server_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    if (server_) server_->stop();
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << server_error_;
    resolver_ = make(1000ms);
  }

  std::unique_ptr<Resolver> make(std::chrono::milliseconds timeout, size_t cache_entries = 1000) {
    ResolverOptions o;
    o.servers.push_back(Endpoint{*IpAddress::parse("127.0.0.1"), server_->port()});
    o.timeout = timeout;
    o.cache_entries = cache_entries;
    auto r = Resolver::create(o);
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(*r) : nullptr;
  }

  template <class Answer, class Fn>
  static Answer wait(Fn start) {
    std::promise<Answer> p;
    auto f = p.get_future();
    start([&p](Answer a) { p.set_value(std::move(a)); });
    return f.get();
  }
  MxAnswer mx(const std::string& n, Resolver* r = nullptr) {
    r = r ? r : resolver_.get();
    return wait<MxAnswer>([&](auto done) { r->mx(n, done); });
  }
  AddressAnswer addresses(const std::string& n) {
    return wait<AddressAnswer>([&](auto done) { resolver_->addresses(n, done); });
  }
  TxtAnswer txt(const std::string& n) {
    return wait<TxtAnswer>([&](auto done) { resolver_->txt(n, done); });
  }

  static std::vector<std::string> texts(const std::vector<IpAddress>& v) {
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.toString());
    return out;
  }

  static test::DnsTestServer* server_;
  static std::string server_error_;
  std::unique_ptr<Resolver> resolver_;
};

test::DnsTestServer* DnsResolverTest::server_ = nullptr;
std::string DnsResolverTest::server_error_;

TEST_F(DnsResolverTest, MxHostsAndOrder) {
  MxAnswer a = mx("Example.ORG.");
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_FALSE(a.null_mx);
  ASSERT_EQ(a.hosts.size(), 3u);
  std::vector<MxHost> ordered = orderMx(a.hosts, 42);
  EXPECT_EQ(ordered[0].preference, 10);
  EXPECT_EQ(ordered[1].preference, 10);
  EXPECT_EQ(ordered[2].preference, 20);
  EXPECT_EQ(ordered[2].host, "mx2.example.org");
  std::set<std::string> first{ordered[0].host, ordered[1].host};
  EXPECT_EQ(first, (std::set<std::string>{"mx1.example.org", "mx3.example.org"}));   // lower case, no dot
}

TEST_F(DnsResolverTest, NullMx) {
  MxAnswer a = mx("null.example");
  EXPECT_EQ(a.outcome, Outcome::kOk);
  EXPECT_TRUE(a.null_mx);
}

TEST_F(DnsResolverTest, NoMxIsNoData) {
  // RFC 5321 §5.1: the caller then falls back to the domain's own addresses.
  MxAnswer a = mx("nomx.example");
  EXPECT_EQ(a.outcome, Outcome::kNoData);
  EXPECT_TRUE(a.hosts.empty());
  EXPECT_EQ(mx("nxdomain.example").outcome, Outcome::kNxDomain);
}

TEST_F(DnsResolverTest, AddressesBothFamilies) {
  AddressAnswer a = addresses("mx1.example.org");
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(texts(a.addresses), (std::vector<std::string>{"::5", "127.0.0.5"}));   // IPv6 first
  AddressAnswer v4 = addresses("mx2.example.org");
  ASSERT_EQ(v4.outcome, Outcome::kOk);
  EXPECT_EQ(texts(v4.addresses), (std::vector<std::string>{"127.0.0.6"}));
  EXPECT_EQ(addresses("example.org").outcome, Outcome::kNoData);
  EXPECT_EQ(addresses("nxdomain.example").outcome, Outcome::kNxDomain);
}

TEST_F(DnsResolverTest, AddressesTempFailOnOneFamilyStillOk) {
  AddressAnswer a = addresses("halfbroken.example");   // AAAA: SERVFAIL
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(texts(a.addresses), (std::vector<std::string>{"127.0.0.9"}));
}

TEST_F(DnsResolverTest, CnamesAreFollowed) {
  AddressAnswer a = addresses("alias.example");   // chased by the server
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(texts(a.addresses), (std::vector<std::string>{"::5", "127.0.0.5"}));
  uint64_t before = resolver_->stats().queries;
  AddressAnswer b = addresses("chain.example");   // chain ends at a CNAME: asked again
  ASSERT_EQ(b.outcome, Outcome::kOk) << b.error;
  EXPECT_EQ(texts(b.addresses), (std::vector<std::string>{"::5", "127.0.0.5"}));
  // A and AAAA of chain.example, then of mx1.example.org (records that came with another
  // name's answer are not cached under their own name): cached now.
  EXPECT_EQ(resolver_->stats().queries - before, 4u);
  EXPECT_EQ(addresses("mx1.example.org").outcome, Outcome::kOk);
  EXPECT_EQ(resolver_->stats().queries - before, 4u);
  MxAnswer m = mx("mxalias.example");
  ASSERT_EQ(m.outcome, Outcome::kOk) << m.error;
  EXPECT_EQ(m.hosts.size(), 3u);
  AddressAnswer loop = addresses("loop1.example");
  EXPECT_EQ(loop.outcome, Outcome::kTempFail);
  EXPECT_NE(loop.error.find("CNAME"), std::string::npos) << loop.error;
}

TEST_F(DnsResolverTest, SingleFamilyLookups) {
  auto a = wait<AddressAnswer>([&](auto done) { resolver_->a("mx1.example.org", done); });
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(texts(a.addresses), (std::vector<std::string>{"127.0.0.5"}));
  auto aaaa = wait<AddressAnswer>([&](auto done) { resolver_->aaaa("mx1.example.org", done); });
  ASSERT_EQ(aaaa.outcome, Outcome::kOk) << aaaa.error;
  EXPECT_EQ(texts(aaaa.addresses), (std::vector<std::string>{"::5"}));
  // Only the other family exists: no data for this one.
  EXPECT_EQ(wait<AddressAnswer>([&](auto done) { resolver_->aaaa("mx2.example.org", done); }).outcome, Outcome::kNoData);
  EXPECT_EQ(wait<AddressAnswer>([&](auto done) { resolver_->a("nxdomain.example", done); }).outcome, Outcome::kNxDomain);
}

TEST_F(DnsResolverTest, Ptr) {
  EXPECT_EQ(reverseName(*IpAddress::parse("192.0.2.5")), "5.2.0.192.in-addr.arpa");
  EXPECT_EQ(reverseName(*IpAddress::parse("::ffff:192.0.2.5")), "5.2.0.192.in-addr.arpa");
  auto p = wait<NameAnswer>([&](auto done) { resolver_->ptr(*IpAddress::parse("127.0.0.5"), done); });
  ASSERT_EQ(p.outcome, Outcome::kOk) << p.error;
  EXPECT_EQ(p.names, (std::vector<std::string>{"mx1.example.org", "other.example"}));
  auto p6 = wait<NameAnswer>([&](auto done) { resolver_->ptr(*IpAddress::parse("::5"), done); });
  ASSERT_EQ(p6.outcome, Outcome::kOk) << p6.error;
  EXPECT_EQ(p6.names, (std::vector<std::string>{"mx1.example.org"}));
  auto none = wait<NameAnswer>([&](auto done) { resolver_->ptr(*IpAddress::parse("127.0.0.77"), done); });
  EXPECT_EQ(none.outcome, Outcome::kNxDomain);
}

TEST_F(DnsResolverTest, Txt) {
  TxtAnswer a = txt("txt.example");
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(a.records, (std::vector<std::string>{"v=spf1 ip4:192.0.2.0/24 -all", "second"}));
  EXPECT_EQ(txt("example.org").outcome, Outcome::kNoData);
}

TEST_F(DnsResolverTest, AnswerLargerThan512Bytes) {
  TxtAnswer a = txt("big.example");
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0], std::string(700, 'k'));
}

TEST_F(DnsResolverTest, Tlsa) {
  auto a = wait<TlsaAnswer>([&](auto done) { resolver_->tlsa("_25._tcp.mx1.example.org", done); });
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].usage, 3);
  EXPECT_EQ(a.records[0].selector, 1);
  EXPECT_EQ(a.records[0].matching_type, 1);
  EXPECT_EQ(a.records[0].data, (std::vector<uint8_t>{0x0a, 0x0b, 0x0c}));
}

// The responder sets AD on the names in "secure" when the query asks with AD (RFC 6840 §5.7):
// the resolver asks, and believes the answer because the server is on 127.0.0.1.
TEST_F(DnsResolverTest, AuthenticatedAnswersCarryTheAdBit) {
  EXPECT_TRUE(resolver_->trustsAd());
  MxAnswer m = mx("signed.example");
  ASSERT_EQ(m.outcome, Outcome::kOk) << m.error;
  EXPECT_TRUE(m.authenticated);
  EXPECT_FALSE(mx("example.org").authenticated);
  EXPECT_TRUE(addresses("mx1.example.org").authenticated);
  EXPECT_FALSE(addresses("mx2.example.org").authenticated);
  auto t = wait<TlsaAnswer>([&](auto done) { resolver_->tlsa("_25._tcp.mx1.example.org", done); });
  ASSERT_EQ(t.outcome, Outcome::kOk);
  EXPECT_TRUE(t.authenticated);
  auto t2 = wait<TlsaAnswer>([&](auto done) { resolver_->tlsa("_25._tcp.mx2.example.org", done); });
  EXPECT_EQ(t2.outcome, Outcome::kNxDomain);
  EXPECT_FALSE(t2.authenticated);
  // Secure denial of existence (RFC 4035 §3.2.3 covers negative answers too).
  MxAnswer gone = mx("gone.signed.example");
  EXPECT_EQ(gone.outcome, Outcome::kNxDomain);
  EXPECT_TRUE(gone.authenticated);
  TxtAnswer nodata = txt("signed.example");
  EXPECT_EQ(nodata.outcome, Outcome::kNoData);
  EXPECT_TRUE(nodata.authenticated);
}

TEST_F(DnsResolverTest, AuthenticatedSurvivesTheCache) {
  uint64_t hits = resolver_->stats().cache_hits;
  EXPECT_TRUE(mx("signed.example").authenticated);
  EXPECT_TRUE(mx("signed.example").authenticated);
  EXPECT_FALSE(mx("example.org").authenticated);
  EXPECT_FALSE(mx("example.org").authenticated);
  EXPECT_EQ(resolver_->stats().cache_hits, hits + 2);
}

TEST_F(DnsResolverTest, CnameChainIsAuthenticatedOnlyWhenEveryStepIs) {
  AddressAnswer a = addresses("salias.example");   // secure CNAME to a secure name
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_TRUE(a.authenticated);
  AddressAnswer b = addresses("halfsigned.example");   // secure CNAME to an insecure name
  ASSERT_EQ(b.outcome, Outcome::kOk) << b.error;
  EXPECT_FALSE(b.authenticated);
  AddressAnswer c = addresses("alias.example");   // insecure CNAME to a secure name
  ASSERT_EQ(c.outcome, Outcome::kOk) << c.error;
  EXPECT_FALSE(c.authenticated);
}

TEST_F(DnsResolverTest, AdIsBelievedOnlyFromLoopbackServers) {
  auto with = [](std::vector<std::string> servers) {
    ResolverOptions o;
    for (const auto& s : servers) o.servers.push_back(Endpoint{*IpAddress::parse(s), 53});
    auto r = Resolver::create(o);
    EXPECT_TRUE(r) << r.status().message();
    return r && (*r)->trustsAd();
  };
  EXPECT_TRUE(with({"127.0.0.1"}));
  EXPECT_TRUE(with({"127.0.0.53", "::1"}));
  EXPECT_FALSE(with({"192.0.2.1"}));
  EXPECT_FALSE(with({"127.0.0.1", "192.0.2.1"}));
  EXPECT_FALSE(with({"::ffff:127.0.0.1"}));   // not ::1
}

TEST_F(DnsResolverTest, CacheHitsAndTtlExpiry) {
  ASSERT_EQ(mx("example.org").outcome, Outcome::kOk);
  Resolver::Stats s1 = resolver_->stats();
  EXPECT_EQ(s1.queries, 1u);
  ASSERT_EQ(mx("EXAMPLE.org.").outcome, Outcome::kOk);
  Resolver::Stats s2 = resolver_->stats();
  EXPECT_EQ(s2.queries, 1u);
  EXPECT_EQ(s2.cache_hits, s1.cache_hits + 1);

  // TTL 1 s: cached, then gone.
  ASSERT_EQ(wait<AddressAnswer>([&](auto d) { resolver_->addresses("short.example", d); }).outcome, Outcome::kOk);
  uint64_t q = resolver_->stats().queries;
  ASSERT_EQ(addresses("short.example").outcome, Outcome::kOk);
  EXPECT_EQ(resolver_->stats().queries, q);   // A (TTL 1) and NODATA AAAA (SOA 60) both cached
  std::this_thread::sleep_for(1100ms);
  ASSERT_EQ(addresses("short.example").outcome, Outcome::kOk);
  EXPECT_EQ(resolver_->stats().queries, q + 1);   // only A again
}

TEST_F(DnsResolverTest, NegativeAnswersAreCached) {
  EXPECT_EQ(mx("nxdomain.example").outcome, Outcome::kNxDomain);
  EXPECT_EQ(mx("nomx.example").outcome, Outcome::kNoData);
  uint64_t q = resolver_->stats().queries;
  EXPECT_EQ(mx("nxdomain.example").outcome, Outcome::kNxDomain);
  EXPECT_EQ(mx("nomx.example").outcome, Outcome::kNoData);
  EXPECT_EQ(resolver_->stats().queries, q);
  // RFC 2308 §5: SOA MINIMUM 1 s (the zone's own SOA) bounds the negative TTL.
  EXPECT_EQ(mx("missing.zone.example").outcome, Outcome::kNxDomain);
  q = resolver_->stats().queries;
  EXPECT_EQ(mx("missing.zone.example").outcome, Outcome::kNxDomain);
  EXPECT_EQ(resolver_->stats().queries, q);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(mx("missing.zone.example").outcome, Outcome::kNxDomain);
  EXPECT_EQ(resolver_->stats().queries, q + 1);
}

TEST_F(DnsResolverTest, ServfailAndRefusedAreTempFailuresNotCached) {
  MxAnswer a = mx("servfail.example");
  EXPECT_EQ(a.outcome, Outcome::kTempFail);
  EXPECT_EQ(a.error, "SERVFAIL");
  MxAnswer r = mx("refused.example");
  EXPECT_EQ(r.outcome, Outcome::kTempFail);
  EXPECT_EQ(r.error, "REFUSED");
  uint64_t q = resolver_->stats().queries;
  EXPECT_EQ(mx("servfail.example").outcome, Outcome::kTempFail);
  EXPECT_EQ(resolver_->stats().queries, q + 1);
  EXPECT_GE(resolver_->stats().failures, 3u);
}

TEST_F(DnsResolverTest, TimeoutIsTempFailWithinTheTimeout) {
  auto r = make(300ms);
  auto start = std::chrono::steady_clock::now();
  MxAnswer a = mx("timeout.example", r.get());
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a.outcome, Outcome::kTempFail);
  EXPECT_EQ(a.error, "timeout");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 800ms);
}

TEST_F(DnsResolverTest, InvalidNamesArePermFailuresInline) {
  bool called = false;
  resolver_->mx("bad..example", [&](MxAnswer a) {
    called = true;
    EXPECT_EQ(a.outcome, Outcome::kPermFail);
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(mx("").outcome, Outcome::kPermFail);
  EXPECT_EQ(mx("with space.example").outcome, Outcome::kPermFail);
  EXPECT_EQ(mx(std::string(64, 'a') + ".example").outcome, Outcome::kPermFail);
  EXPECT_EQ(resolver_->stats().queries, 0u);
}

TEST_F(DnsResolverTest, IdenticalLookupsShareOneQuery) {
  std::promise<void> p1, p2;
  resolver_->mx("example.org", [&](MxAnswer) { p1.set_value(); });
  resolver_->mx("example.org", [&](MxAnswer) { p2.set_value(); });
  p1.get_future().get();
  p2.get_future().get();
  Resolver::Stats s = resolver_->stats();
  EXPECT_EQ(s.queries, 1u);
  EXPECT_EQ(s.coalesced + s.cache_hits, 1u);
}

TEST_F(DnsResolverTest, CacheIsBounded) {
  auto r = make(1000ms, 2);
  for (const char* n : {"example.org", "null.example", "nomx.example"}) mx(n, r.get());
  EXPECT_EQ(r->stats().cache_entries, 2u);
  uint64_t q = r->stats().queries;
  mx("example.org", r.get());   // the least recently used: dropped
  EXPECT_EQ(r->stats().queries, q + 1);
}

TEST_F(DnsResolverTest, ShutdownAnswersPendingLookups) {
  auto r = make(5000ms);
  std::promise<MxAnswer> p;
  r->mx("timeout.example", [&](MxAnswer a) { p.set_value(std::move(a)); });
  std::this_thread::sleep_for(50ms);
  auto start = std::chrono::steady_clock::now();
  r.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  MxAnswer a = p.get_future().get();
  EXPECT_EQ(a.outcome, Outcome::kTempFail);
  EXPECT_EQ(a.error, "shutting down");
}

TEST_F(DnsResolverTest, AwaitableResumesOnTheCallersExecutor) {
  asio::io_context io;
  MxAnswer got;
  AddressAnswer addrs;
  std::thread::id resumed_on;
  asio::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        got = co_await asyncMx(*resolver_, "example.org");
        resumed_on = std::this_thread::get_id();
        addrs = co_await asyncAddresses(*resolver_, "mx1.example.org");   // a network answer, then
        TxtAnswer t = co_await asyncTxt(*resolver_, "txt.example");
        EXPECT_EQ(t.outcome, Outcome::kOk);
        MxAnswer again = co_await asyncMx(*resolver_, "example.org");     // a cache hit
        EXPECT_EQ(again.outcome, Outcome::kOk);
      },
      asio::detached);
  io.run();
  // The resolver thread may still be inside asio::post (signalling the io_context) when the
  // coroutine has already finished: stop it before the io_context goes away. The daemon
  // must do the same: destroy the Resolver before the io_contexts that await it.
  resolver_.reset();
  EXPECT_EQ(got.outcome, Outcome::kOk);
  EXPECT_EQ(addrs.outcome, Outcome::kOk);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

TEST(DnsOrderMx, StableByPreferenceShuffledWithinEqual) {
  std::vector<MxHost> hosts{{20, "c"}, {10, "a"}, {10, "b"}, {30, "d"}, {10, "e"}};
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto o = orderMx(hosts, seed);
    ASSERT_EQ(o.size(), 5u);
    EXPECT_EQ(o[0].preference, 10);
    EXPECT_EQ(o[2].preference, 10);
    EXPECT_EQ(o[3].host, "c");
    EXPECT_EQ(o[4].host, "d");
    firsts.insert(o[0].host);
    auto names = [](const std::vector<MxHost>& v) {
      std::string s;
      for (const auto& h : v) s += h.host;
      return s;
    };
    EXPECT_EQ(names(o), names(orderMx(hosts, seed)));   // the same seed, the same order
  }
  EXPECT_EQ(firsts.size(), 3u);   // every equal-preference host comes first for some seed
  EXPECT_TRUE(orderMx({}, 1).empty());
}

}  // namespace
}  // namespace postern::dns
