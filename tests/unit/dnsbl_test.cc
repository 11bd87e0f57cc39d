// DNS blocklists (RFC 5782): the query name and the meaning of answers as tables, then the
// live class against an in-process authoritative DNS responder on a loopback UDP port 0
// (RFC 1035 §4.1 messages, written by hand below), with real c-ares underneath.
#include "protect/dnsbl.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
// An authoritative responder for the live tests: A answers from a table, NXDOMAIN for
// unknown names, SERVFAIL or silence (a timeout) for names listed as such.

class FakeDns {
 public:
  FakeDns() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcvbuf = 1 << 20;  // bursts of a few hundred queries (the kernel caps it at rmem_max)
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    EXPECT_EQ(::pipe(stop_), 0);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeDns() {
    char b = 1;
    EXPECT_EQ(::write(stop_[1], &b, 1), 1);
    thread_.join();
    ::close(fd_);
    ::close(stop_[0]);
    ::close(stop_[1]);
  }

  uint16_t port() const { return port_; }
  Endpoint endpoint() const { return Endpoint{ip("127.0.0.1"), port_}; }
  void answer(const std::string& name, std::vector<std::string> addrs) {
    std::lock_guard lock(mu_);
    answers_[name] = std::move(addrs);
  }
  void ignore(const std::string& name) {
    std::lock_guard lock(mu_);
    ignored_.insert(name);
  }
  void servfail(const std::string& name) {
    std::lock_guard lock(mu_);
    servfail_.insert(name);
  }
  int queries(const std::string& name) {
    std::lock_guard lock(mu_);
    return seen_[name];
  }

 private:
  void run() {
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      uint8_t buf[512];
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) continue;
      std::vector<uint8_t> reply;
      if (!respond(buf, static_cast<size_t>(n), reply)) continue;
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }

  // RFC 1035 §4.1: header, the question echoed back, then A records pointing at it.
  bool respond(const uint8_t* q, size_t n, std::vector<uint8_t>& out) {
    if (n < 12) return false;
    size_t p = 12;
    std::string name;
    while (p < n && q[p] != 0) {
      size_t len = q[p];
      if (p + 1 + len > n) return false;
      if (!name.empty()) name += '.';
      for (size_t i = 0; i < len; ++i) name += static_cast<char>(std::tolower(q[p + 1 + i]));
      p += 1 + len;
    }
    if (p + 5 > n) return false;
    size_t question_end = p + 5;  // root label, QTYPE, QCLASS
    uint16_t qtype = static_cast<uint16_t>(q[p + 1] << 8 | q[p + 2]);
    std::vector<std::string> addrs;
    uint8_t rcode = 3;  // NXDOMAIN
    {
      std::lock_guard lock(mu_);
      ++seen_[name];
      if (ignored_.count(name)) return false;
      if (servfail_.count(name)) {
        rcode = 2;
      } else if (auto it = answers_.find(name); it != answers_.end()) {
        rcode = 0;
        if (qtype == 1) addrs = it->second;
      }
    }
    out.assign(q, q + question_end);
    out[2] = static_cast<uint8_t>(0x84 | (q[2] & 0x01));  // QR, AA, RD as asked
    out[3] = static_cast<uint8_t>(0x80 | rcode);          // RA, RCODE
    out[4] = 0, out[5] = 1;                               // QDCOUNT
    out[6] = 0, out[7] = static_cast<uint8_t>(addrs.size());
    out[8] = out[9] = out[10] = out[11] = 0;  // NSCOUNT, ARCOUNT (EDNS dropped)
    for (const std::string& a : addrs) {
      IpAddress addr = ip(a);
      const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};  // name ptr, A, IN, TTL 60, RDLENGTH 4
      out.insert(out.end(), rr, rr + sizeof rr);
      out.insert(out.end(), addr.bytes(), addr.bytes() + 4);
    }
    return true;
  }

  int fd_ = -1;
  int stop_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> answers_;
  std::set<std::string> ignored_;
  std::set<std::string> servfail_;
  std::map<std::string, int> seen_;
};

struct Outcome {
  DnsblVerdict verdict;
  std::thread::id thread;
  std::chrono::milliseconds elapsed;
};

class DnsblLive : public ::testing::Test {
 protected:
  std::unique_ptr<Dnsbl> make(std::vector<config::DnsblZone> zones, int threshold = 1, uint64_t timeout_ms = 2000) {
    config::Dnsbl cfg;
    cfg.zones = std::move(zones);
    cfg.threshold = threshold;
    cfg.resolver = dns_.endpoint();
    cfg.timeout_ms = timeout_ms;
    auto r = Dnsbl::create(cfg);
    EXPECT_TRUE(r) << r.status().message();
    return r ? std::move(r).value() : nullptr;
  }

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

  FakeDns dns_;
};

TEST_F(DnsblLive, ListedInRejectZoneRejectsNamingTheZone) {
  dns_.answer("5.2.0.192.zen.example", {"127.0.0.2"});
  auto d = make({zone("zen.example")});
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "zen.example");
  EXPECT_EQ(o.verdict.listed, std::vector<std::string>{"zen.example=127.0.0.2"});
  EXPECT_FALSE(o.verdict.failed_open);
  EXPECT_NE(o.thread, std::this_thread::get_id());  // on the Dnsbl's own thread
  EXPECT_EQ(dns_.queries("5.2.0.192.zen.example"), 1);
}

TEST_F(DnsblLive, UnlistedIsNotRejected) {
  dns_.answer("5.2.0.192.zen.example", {"127.0.0.2"});
  auto d = make({zone("zen.example")});
  Outcome o = run(*d, "192.0.2.6");  // NXDOMAIN
  EXPECT_FALSE(o.verdict.reject);
  EXPECT_TRUE(o.verdict.zone.empty());
  EXPECT_TRUE(o.verdict.listed.empty());
  EXPECT_FALSE(o.verdict.failed_open);
  EXPECT_EQ(dns_.queries("6.2.0.192.zen.example"), 1);
}

TEST_F(DnsblLive, Ipv6ClientIsLookedUpByNibbles) {
  dns_.answer(queryName(ip("2001:db8::25"), "v6.example"), {"127.0.0.2"});
  auto d = make({zone("v6.example")});
  EXPECT_TRUE(run(*d, "2001:db8::25").verdict.reject);
  EXPECT_FALSE(run(*d, "2001:db8::26").verdict.reject);
}

TEST_F(DnsblLive, ScoreZonesSumToTheThreshold) {
  for (const char* z : {"a.example", "b.example"}) dns_.answer(std::string("1.2.0.192.") + z, {"127.0.0.2"});
  dns_.answer("2.2.0.192.a.example", {"127.0.0.2"});
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
  dns_.answer("1.2.0.192.s.example", {"127.0.0.2"});
  dns_.answer("1.2.0.192.r.example", {"127.0.0.3"});
  auto d = make({zone("s.example", false, 10), zone("r.example")}, 1);
  Outcome o = run(*d, "192.0.2.1");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "r.example");
  EXPECT_EQ(o.verdict.score, 10);
}

TEST_F(DnsblLive, AnswerCodesPerZone) {
  dns_.answer("1.2.0.192.zen.example", {"127.0.0.10"});               // PBL only
  dns_.answer("2.2.0.192.zen.example", {"127.0.0.10", "127.0.0.4"});  // PBL and XBL
  dns_.answer("2.2.0.192.any.example", {"127.0.0.2", "127.0.0.4"});
  auto d = make({zone("zen.example", true, 1, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}), zone("any.example", false)}, 5);
  Outcome pbl = run(*d, "192.0.2.1");
  EXPECT_FALSE(pbl.verdict.reject);
  EXPECT_TRUE(pbl.verdict.listed.empty());
  EXPECT_FALSE(pbl.verdict.failed_open);
  Outcome xbl = run(*d, "192.0.2.2");
  EXPECT_TRUE(xbl.verdict.reject);
  EXPECT_EQ(xbl.verdict.zone, "zen.example");
  EXPECT_EQ(xbl.verdict.listed,
            (std::vector<std::string>{"zen.example=127.0.0.4", "any.example=127.0.0.2", "any.example=127.0.0.4"}));
  EXPECT_EQ(xbl.verdict.score, 1);  // one zone, one score however many codes
}

TEST_F(DnsblLive, SilentZoneFailsOpenAtTheTimeoutWhileAnotherDecides) {
  dns_.ignore("5.2.0.192.slow.example");
  dns_.answer("5.2.0.192.zen.example", {"127.0.0.2"});
  constexpr uint64_t kTimeoutMs = 400;
  auto d = make({zone("slow.example"), zone("zen.example")}, 1, kTimeoutMs);
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_TRUE(o.verdict.reject);
  EXPECT_EQ(o.verdict.zone, "zen.example");
  EXPECT_TRUE(o.verdict.failed_open);
  EXPECT_GE(o.elapsed.count(), static_cast<int64_t>(kTimeoutMs) - 5);
  EXPECT_LT(o.elapsed.count(), static_cast<int64_t>(kTimeoutMs) + 500);
  EXPECT_GE(dns_.queries("5.2.0.192.slow.example"), 1);
  // The same silence for an unlisted client: fail open, accepted.
  dns_.ignore("6.2.0.192.slow.example");
  Outcome clean = run(*d, "192.0.2.6");
  EXPECT_FALSE(clean.verdict.reject);
  EXPECT_TRUE(clean.verdict.failed_open);
}

TEST_F(DnsblLive, ServfailFailsOpenWithoutWaiting) {
  dns_.servfail("5.2.0.192.broken.example");
  auto d = make({zone("broken.example")}, 1, 5000);
  Outcome o = run(*d, "192.0.2.5");
  EXPECT_FALSE(o.verdict.reject);
  EXPECT_TRUE(o.verdict.failed_open);
  EXPECT_LT(o.elapsed.count(), 2500);                      // an answer, not the deadline
  EXPECT_EQ(dns_.queries("5.2.0.192.broken.example"), 1);  // taken as the answer, not retried
}

TEST_F(DnsblLive, ResolverRefusedCodeIsIgnored) {
  dns_.answer("5.2.0.192.zen.example", {"127.255.255.254"});
  dns_.answer("5.2.0.192.wild.example", {"198.51.100.7"});  // a resolver that wildcards NXDOMAIN
  auto d = make({zone("zen.example"), zone("wild.example"), zone("other.example")});
  for (int i = 0; i < 3; ++i) {  // repeated: logged once per zone per minute, ignored every time
    Outcome o = run(*d, "192.0.2.5");
    EXPECT_FALSE(o.verdict.reject);
    EXPECT_TRUE(o.verdict.listed.empty());
    EXPECT_TRUE(o.verdict.failed_open);
  }
}

TEST_F(DnsblLive, ManyConcurrentChecksEachCompleteOnce) {
  dns_.answer("1.2.0.192.zen.example", {"127.0.0.2"});
  auto d = make({zone("zen.example"), zone("other.example")});
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
  d.reset();  // joins the lookup thread: no more calls after this
  EXPECT_EQ(calls.load(), kThreads * kPerThread);
  int listed = 0;
  for (int k = 0; k < kThreads * kPerThread; ++k) listed += k % 3 == 0;
  EXPECT_EQ(rejects.load(), listed);
}

TEST_F(DnsblLive, DestructionFailsOpenPendingChecksOnce) {
  dns_.ignore("5.2.0.192.slow.example");
  dns_.answer("5.2.0.192.zen.example", {"127.0.0.2"});
  auto d = make({zone("zen.example"), zone("slow.example")}, 1, 60'000);
  std::atomic<int> calls{0};
  DnsblVerdict got;
  d->check(ip("192.0.2.5"), [&](DnsblVerdict v) {
    calls.fetch_add(1);
    got = std::move(v);
  });
  // Wait (by observation, not by sleeping a fixed time) until both queries went out.
  auto until = Clock::now() + 10s;
  while ((dns_.queries("5.2.0.192.slow.example") == 0 || dns_.queries("5.2.0.192.zen.example") == 0) &&
         Clock::now() < until)
    std::this_thread::yield();
  auto start = Clock::now();
  d.reset();
  EXPECT_LT(Clock::now() - start, 2s);  // not the 60 s timeout
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(got.failed_open);
}

TEST(DnsblNoZones, DoneRunsInline) {
  auto r = Dnsbl::create(config::Dnsbl{});
  ASSERT_TRUE(r);
  bool called = false;
  r.value()->check(ip("192.0.2.5"), [&](DnsblVerdict v) {
    called = true;
    EXPECT_FALSE(v.reject);
    EXPECT_FALSE(v.failed_open);
  });
  EXPECT_TRUE(called);
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
  config::Dnsbl cfg;
  cfg.zones = {zone("zen.example")};
  cfg.resolver = Endpoint{ip("127.0.0.1"), port};
  cfg.timeout_ms = 500;
  auto r = Dnsbl::create(cfg);
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
