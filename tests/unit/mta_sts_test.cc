// MTA-STS (RFC 8461): the pure parsers as tables, then the fetch and the cache against a real
// HTTPS server on loopback (tests/e2e/mta_sts_server.py) with DNS answered by fixed lambdas.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <fmt/format.h>

#include "delivery/mta_sts.h"
#include "delivery/mta_sts_policy.h"

namespace postern::delivery {
namespace {

using json = nlohmann::json;
using SysClock = std::chrono::system_clock;

// ---- §3.1 TXT record ------------------------------------------------------------------------

TEST(MtaStsRecord, Table) {
  struct Case {
    const char* text;
    const char* id;  // nullptr: invalid
  };
  const Case cases[] = {
      {"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
      {"v=STSv1; id=20160831085700Z", "20160831085700Z"},
      {"v=STSv1;id=abc", "abc"},
      {"v=STSv1 ;\tid=abc ; ", "abc"},
      {"v=STSv1; id=abc; ext=1; other-x.y=v:a/b", "abc"},  // extensions ignored
      {"v=STSv1; foo=bar; id=XYZ123;", "XYZ123"},          // id need not come first
      {"v=STSv1; id=first; id=second", "first"},           // the first occurrence counts
      {"v=STSv1; id=12345678901234567890123456789012", "12345678901234567890123456789012"},  // 32
      {"v=STSv1; id=123456789012345678901234567890123", nullptr},                            // 33 characters
      {"v=STSv1; id=", nullptr},
      {"v=STSv1; id=ab-c", nullptr},  // only letters and digits
      {"v=STSv1; id=ab c", nullptr},
      {"v=STSv1;", nullptr},  // no fields
      {"v=STSv1", nullptr},
      {"v=STSv1; ext=1", nullptr},   // no id
      {"v=STSv1; ID=abc", nullptr},  // %s"id=": case-sensitive
      {"v=STSv1 id=abc", nullptr},   // separator is ';'
      {"v=STSv1; id=abc;; ", nullptr},
      {"v=STSv1; =abc; id=x", nullptr},
      {"v=STSv1; _x=1; id=x", nullptr},  // names start alphanumeric
      {"v=STSv1; x=a=b; id=x", nullptr},
      {"v=STSv2; id=abc", nullptr},
      {"v=stsv1; id=abc", nullptr},
      {"", nullptr},
  };
  for (const auto& c : cases) {
    auto r = parseStsRecord(c.text);
    if (c.id) {
      ASSERT_TRUE(r) << c.text << ": " << r.status().message();
      EXPECT_EQ(*r, c.id) << c.text;
    } else {
      EXPECT_FALSE(r) << c.text;
    }
  }
}

TEST(MtaStsRecord, SelectCountsOnlyStsRecords) {
  using K = StsRecord::Kind;
  EXPECT_EQ(selectStsRecord({}).kind, K::kNone);
  EXPECT_EQ(selectStsRecord({"v=spf1 -all", "hello"}).kind, K::kNone);
  EXPECT_EQ(selectStsRecord({"v=STSv10; id=a"}).kind, K::kNone);  // not a candidate
  auto one = selectStsRecord({"v=spf1 -all", "v=STSv1; id=abc"});
  EXPECT_EQ(one.kind, K::kValid);
  EXPECT_EQ(one.id, "abc");
  auto two = selectStsRecord({"v=STSv1; id=abc", "v=STSv1; id=def"});
  EXPECT_EQ(two.kind, K::kInvalid);
  EXPECT_NE(two.error.find("2 v=STSv1 records"), std::string::npos) << two.error;
  auto bad = selectStsRecord({"v=STSv1; id=a-b"});
  EXPECT_EQ(bad.kind, K::kInvalid);
  EXPECT_FALSE(bad.error.empty());
}

// ---- §3.2 policy file -----------------------------------------------------------------------

TEST(MtaStsPolicy, Valid) {
  struct Case {
    const char* body;
    StsMode mode;
    std::vector<std::string> mx;
    uint32_t max_age;
  };
  const Case cases[] = {
      {"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\n"
       "max_age: 604800\r\n",
       StsMode::kEnforce,
       {"mail.example.com", "*.example.net", "backupmx.example.com"},
       604800},
      {"version: STSv1\nmode: testing\nmx: MX.Example.COM.\nmax_age: 86400",
       StsMode::kTesting,
       {"mx.example.com"},
       86400},
      {"version: STSv1\nmode: none\nmax_age: 0\n", StsMode::kNone, {}, 0},
      {"version:STSv1\nmode:\tenforce  \nmx:mx.example.com\nmax_age:31557600\n",
       StsMode::kEnforce,
       {"mx.example.com"},
       31557600},
      // Unknown keys ignored; repeated non-mx keys: the first counts; blank lines tolerated.
      {"version: STSv1\n\nfuture_key: anything at all\nmode: testing\nmode: enforce\nmx: a.example\n"
       "max_age: 5\nmax_age: 6\nversion: STSv2\n",
       StsMode::kTesting,
       {"a.example"},
       5},
  };
  for (const auto& c : cases) {
    auto r = parseStsPolicy(c.body);
    ASSERT_TRUE(r) << c.body << ": " << r.status().message();
    EXPECT_EQ(r->mode, c.mode) << c.body;
    EXPECT_EQ(r->mx, c.mx) << c.body;
    EXPECT_EQ(r->max_age, c.max_age) << c.body;
  }
}

TEST(MtaStsPolicy, Invalid) {
  const char* cases[] = {
      "",
      "mode: enforce\nmx: a.example\nmax_age: 1\n",      // no version
      "version: STSv1\nmx: a.example\nmax_age: 1\n",     // no mode
      "version: STSv1\nmode: enforce\nmx: a.example\n",  // no max_age
      "version: STSv1\nmode: enforce\nmax_age: 1\n",     // enforce without mx
      "version: STSv1\nmode: testing\nmax_age: 1\n",     // testing without mx
      "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
      "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
      "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000001\n",  // 11 digits
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n",
      "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
      "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
      "version: STSv1\nmode: enforce\nmx: mx*.example\nmax_age: 1\n",
      "version: STSv1\nmode: enforce\nmx: \nmax_age: 1\n",
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\njunk line\n",  // no ':'
      "version: STSv1\nmode: enforce\n mx: a.example\nmax_age: 1\n",            // key with a blank
      "Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",             // keys are case-sensitive
  };
  for (const char* c : cases) EXPECT_FALSE(parseStsPolicy(c)) << c;
}

TEST(MtaStsPolicy, SizeLimit) {
  std::string body = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n";
  const std::string pad = "x_pad: " + std::string(100, 'p') + "\n";
  while (body.size() + pad.size() <= kStsMaxPolicyBytes) body += pad;
  EXPECT_TRUE(parseStsPolicy(body));
  body += pad;
  auto r = parseStsPolicy(body);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("limit"), std::string::npos);
}

// ---- §4.1 MX matching -----------------------------------------------------------------------

TEST(MtaStsMatch, Table) {
  struct Case {
    const char* pattern;
    const char* host;
    bool match;
  };
  const Case cases[] = {
      {"mail.example.com", "mail.example.com", true},
      {"mail.example.com", "MAIL.Example.Com.", true},
      {"mail.example.com.", "mail.example.com", true},
      {"mail.example.com", "mail2.example.com", false},
      {"mail.example.com", "x.mail.example.com", false},
      {"*.example.net", "mx1.example.net", true},
      {"*.example.net", "MX1.EXAMPLE.NET.", true},
      {"*.Example.NET", "mx1.example.net", true},
      {"*.example.net", "example.net", false},  // the '*' stands for exactly one label
      {"*.example.net", "a.b.example.net", false},
      {"*.example.net", ".example.net", false},
      {"*.example.net", "mx1.example.net.evil", false},
      {"*.example.net", "mx1example.net", false},
      {"*.", "a.", false},
      {"*", "a", false},
      {"", "", false},
      {"*.example.net", "", false},
  };
  for (const auto& c : cases) EXPECT_EQ(stsMxMatches(c.pattern, c.host), c.match) << c.pattern << " vs " << c.host;
}

TEST(MtaStsMatch, MxAllowed) {
  Policy none;
  EXPECT_TRUE(mxAllowed(none, "anything.example"));
  Policy p;
  p.source = PolicySource::kFetched;
  p.mode = StsMode::kEnforce;
  p.mx = {"mx.example.org", "*.mail.example.org"};
  EXPECT_TRUE(mxAllowed(p, "mx.example.org."));
  EXPECT_TRUE(mxAllowed(p, "b.mail.example.org"));
  EXPECT_FALSE(mxAllowed(p, "evil.example.com"));
  p.mode = StsMode::kTesting;
  EXPECT_FALSE(mxAllowed(p, "evil.example.com"));  // the caller reports, and delivers anyway
  p.mode = StsMode::kNone;
  EXPECT_TRUE(mxAllowed(p, "evil.example.com"));
}

TEST(MtaStsMatch, NormalizeDomain) {
  EXPECT_EQ(normalizeDomain("Example.ORG."), "example.org");
  EXPECT_EQ(normalizeDomain("a-b.example"), "a-b.example");
  for (const char* bad :
       {"", ".", "a..b", "-a.example", "a-.example", "a_b.example", "a b", "a.example..", "xn--\xc3\xa9.example"})
    EXPECT_EQ(normalizeDomain(bad), "") << bad;
  EXPECT_EQ(normalizeDomain(std::string(64, 'a') + ".example"), "");
  EXPECT_EQ(normalizeDomain(std::string(63, 'a') + ".example"), std::string(63, 'a') + ".example");
}

// ---- §3.3 HTTP response ---------------------------------------------------------------------

using State = StsHttpParse::State;

TEST(MtaStsHttp, ContentLengthByteByByte) {
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t n = 0; n < resp.size(); ++n)
    EXPECT_EQ(parseStsHttpResponse(std::string_view(resp).substr(0, n), false).state, State::kNeedMore) << n;
  auto r = parseStsHttpResponse(resp, false);
  ASSERT_EQ(r.state, State::kDone) << r.error;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.content_type, "text/plain");
  EXPECT_EQ(r.response.body, "hello");
  EXPECT_TRUE(checkStsHttpResponse(r.response));
  // Cut short: the close before the end of the body is an error, not a short policy.
  auto cut = parseStsHttpResponse(std::string_view(resp).substr(0, resp.size() - 1), true);
  EXPECT_EQ(cut.state, State::kError);
}

TEST(MtaStsHttp, Chunked) {
  const std::string resp =
      "HTTP/1.1 200 OK\nContent-Type: TEXT/PLAIN\nTransfer-Encoding: chunked\n\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t n = 0; n < resp.size(); ++n) {
    auto r = parseStsHttpResponse(std::string_view(resp).substr(0, n), false);
    EXPECT_EQ(r.state, State::kNeedMore) << n << " " << r.error;
  }
  auto r = parseStsHttpResponse(resp, false);
  ASSERT_EQ(r.state, State::kDone) << r.error;
  EXPECT_EQ(r.response.body, "hello world");
  EXPECT_EQ(r.response.content_type, "text/plain");
  EXPECT_EQ(parseStsHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false).state,
            State::kError);
  EXPECT_EQ(parseStsHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", false).state,
            State::kError);
  EXPECT_EQ(parseStsHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).state, State::kError);
}

TEST(MtaStsHttp, UntilClose) {
  const std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\n";
  EXPECT_EQ(parseStsHttpResponse(resp, false).state, State::kNeedMore);
  auto r = parseStsHttpResponse(resp, true);
  ASSERT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.response.body, "version: STSv1\n");
}

TEST(MtaStsHttp, InterimResponseSkipped) {
  auto r = parseStsHttpResponse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false);
  ASSERT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "x");
}

TEST(MtaStsHttp, Checks) {
  auto redirect = parseStsHttpResponse("HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.example/p\r\n\r\n", false);
  ASSERT_EQ(redirect.state, State::kDone);  // the head is enough for a non-200
  auto c = checkStsHttpResponse(redirect.response);
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("301 redirect to https://elsewhere.example/p"), std::string::npos);
  StsHttpResponse r;
  r.status = 404;
  EXPECT_FALSE(checkStsHttpResponse(r));
  r.status = 200;
  EXPECT_FALSE(checkStsHttpResponse(r));  // no Content-Type
  r.content_type = "text/html";
  EXPECT_FALSE(checkStsHttpResponse(r));
  r.content_type = "text/plain";
  EXPECT_TRUE(checkStsHttpResponse(r));
}

TEST(MtaStsHttp, Limits) {
  // Body over 64 KiB by Content-Length: refused from the head alone.
  auto big =
      parseStsHttpResponse(fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", kStsMaxPolicyBytes + 1), false);
  EXPECT_EQ(big.state, State::kError);
  // Without a length: refused once more than 64 KiB has arrived.
  std::string close_framed = "HTTP/1.1 200 OK\r\n\r\n" + std::string(kStsMaxPolicyBytes + 1, 'x');
  EXPECT_EQ(parseStsHttpResponse(close_framed, false).state, State::kError);
  // A head that never ends.
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() <= kStsMaxHttpHeadBytes) head += "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  EXPECT_EQ(parseStsHttpResponse(head, false).state, State::kError);
  for (const char* bad :
       {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "SMTP 220\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"})
    EXPECT_EQ(parseStsHttpResponse(bad, false).state, State::kError) << bad;
}

TEST(MtaStsHttp, RequestNamesTheHost) {
  const std::string req = stsPolicyRequest("mta-sts.example.org");
  EXPECT_TRUE(req.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"));
  EXPECT_NE(req.find("\r\nHost: mta-sts.example.org\r\n"), std::string::npos);
  EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_TRUE(req.ends_with("\r\n\r\n"));
}

// ---- cache file -----------------------------------------------------------------------------

TEST(MtaStsCacheFile, RoundTripAndDamage) {
  CachedPolicy a{"example.org",
                 "abc1",
                 {StsMode::kEnforce, {"mx.example.org", "*.example.net"}, 86400},
                 SysClock::time_point(std::chrono::seconds(1'700'000'000))};
  CachedPolicy b{"example.com", "z", {StsMode::kNone, {}, 0}, SysClock::time_point(std::chrono::seconds(5))};
  const std::string text = formatStsCache({a, b});
  auto back = parseStsCache(text);
  ASSERT_TRUE(back) << back.status().message();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].domain, "example.org");
  EXPECT_EQ((*back)[0].id, "abc1");
  EXPECT_EQ((*back)[0].policy.mode, StsMode::kEnforce);
  EXPECT_EQ((*back)[0].policy.mx, a.policy.mx);
  EXPECT_EQ((*back)[0].policy.max_age, 86400u);
  EXPECT_EQ((*back)[0].fetched, a.fetched);
  EXPECT_EQ((*back)[1].policy.mode, StsMode::kNone);
  for (
      const char* bad : {
          "",
          "[]",
          "{\"version\":2,\"policies\":[]}",
          "{\"version\":1}",
          R"({"version":1,"policies":[{"domain":"Example.org","id":"a","mode":"none","mx":[],"max_age":1,"fetched":1}]})",
          R"({"version":1,"policies":[{"domain":"example.org","id":"","mode":"none","mx":[],"max_age":1,"fetched":1}]})",
          R"({"version":1,"policies":[{"domain":"example.org","id":"a","mode":"strict","mx":[],"max_age":1,"fetched":1}]})",
          R"({"version":1,"policies":[{"domain":"example.org","id":"a","mode":"none","mx":["a..b"],"max_age":1,"fetched":1}]})",
          R"({"version":1,"policies":[{"domain":"example.org","id":"a","mode":"none","mx":[],"max_age":-1,"fetched":1}]})",
          R"({"version":1,"policies":[{"domain":"example.org","id":"a","mode":"none","mx":[],"max_age":1}]})",
      })
    EXPECT_FALSE(parseStsCache(bad)) << bad;
  // Every truncation of a valid file is refused, never half-read.
  for (size_t n = 0; n + 2 < text.size(); ++n) EXPECT_FALSE(parseStsCache(text.substr(0, n))) << n;
}

// ---- fetch and cache against a real HTTPS server ---------------------------------------------

// Runs one coroutine to completion on a fresh io_context.
Policy run(net::awaitable<Policy> a) {
  asio::io_context io;
  std::optional<Policy> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, Policy p) {
    error = e;
    out = std::move(p);
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

std::string readText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void writeText(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
}

// tests/e2e/mta_sts_server.py as a child process, answering from a response file.
class PolicyServer {
 public:
  PolicyServer(const std::string& dir, const std::string& cert, const std::string& key)
      : response_(dir + "/response.json"), log_(dir + "/requests.log") {
    respond(200, "text/plain", "");
    std::ofstream(log_).flush();
    int fds[2];
    if (::pipe(fds) != 0) return;
    const std::string script = std::string(POSTERN_SOURCE_DIR) + "/tests/e2e/mta_sts_server.py";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--cert", cert.c_str(), "--key", key.c_str(), "--response",
              response_.c_str(), "--log", log_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    char line[64] = {};
    if (out_ && std::fgets(line, sizeof line, out_)) port_ = static_cast<uint16_t>(std::atoi(line + 5));
  }
  ~PolicyServer() {
    stop();
    if (out_) std::fclose(out_);
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  uint16_t port() const { return port_; }
  void respond(int status, const char* content_type, const std::string& body, bool chunked = false,
               json headers = json::object()) {
    json spec = {{"status", status}, {"body", body}, {"chunked", chunked}, {"headers", headers}};
    if (content_type) spec["content_type"] = content_type;
    writeText(response_, spec.dump());
  }
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    std::istringstream in(readText(log_));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

 private:
  std::string response_, log_;
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  uint16_t port_ = 0;
};

constexpr const char* kEnforcePolicy =
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.mail.example.org\r\nmax_age: 86400\r\n";
constexpr const char* kTestingPolicy = "version: STSv1\nmode: testing\nmx: mx9.example.org\nmax_age: 3600\n";

class MtaStsLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(::testing::TempDir() + "/mta_sts_certs_" + std::to_string(::getpid()));
    std::filesystem::create_directories(*certs_);
    for (const char* name : {"mta-sts.example.org", "mta-sts.example.net"}) {
      const std::string base = *certs_ + "/" + name;
      const std::string cmd = fmt::format(
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout {0}.key "
          "-out {0}.crt -subj /CN={1} -addext subjectAltName=DNS:{1} >/dev/null 2>&1",
          base, name);
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    // Both certificates are trusted: the .net one chains fine but names the wrong host.
    std::ofstream(*certs_ + "/ca.pem") << readText(*certs_ + "/mta-sts.example.org.crt")
                                       << readText(*certs_ + "/mta-sts.example.net.crt");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*certs_);
    delete certs_;
  }

  void SetUp() override {
    dir_ = ::testing::TempDir() + "/mta_sts_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void startServer(const char* cert_name = "mta-sts.example.org") {
    const std::string base = *certs_ + "/" + cert_name;
    server_ = std::make_unique<PolicyServer>(dir_, base + ".crt", base + ".key");
    ASSERT_NE(server_->port(), 0) << "the policy server did not start";
  }

  MtaStsOptions options() {
    MtaStsOptions o;
    o.txt = [this](std::string name) -> net::awaitable<dns::TxtAnswer> {
      txt_queries_.push_back(name);
      dns::TxtAnswer a;
      a.outcome = txt_records_.empty() ? dns::Outcome::kNxDomain : dns::Outcome::kOk;
      if (txt_fails_) {
        a.outcome = dns::Outcome::kTempFail;
        a.error = "SERVFAIL";
      }
      a.records = txt_records_;
      co_return a;
    };
    o.addresses = [this](std::string host) -> net::awaitable<dns::AddressAnswer> {
      address_queries_.push_back(host);
      dns::AddressAnswer a;
      a.outcome = dns::Outcome::kOk;
      for (const char* addr : addresses_) a.addresses.push_back(*IpAddress::parse(addr));
      co_return a;
    };
    o.port = server_ ? server_->port() : 1;
    o.ca_file = *certs_ + "/ca.pem";
    o.system_trust = false;
    o.fetch_timeout = std::chrono::seconds(10);
    o.now = [this] { return now_; };
    o.counters = &counters_;
    return o;
  }
  std::unique_ptr<MtaSts> make(MtaStsOptions o) {
    auto m = MtaSts::create(std::move(o));
    EXPECT_TRUE(m) << m.status().message();
    return m ? std::move(m).value() : nullptr;
  }
  void publish(const std::string& id) { txt_records_ = {"v=spf1 -all", "v=STSv1; id=" + id + ";"}; }

  static std::string* certs_;
  std::string dir_;
  std::unique_ptr<PolicyServer> server_;
  std::vector<std::string> txt_records_;
  bool txt_fails_ = false;
  std::vector<const char*> addresses_ = {"127.0.0.1"};
  std::vector<std::string> txt_queries_, address_queries_;
  SysClock::time_point now_ = SysClock::time_point(std::chrono::seconds(1'800'000'000));
  Counters counters_;
};
std::string* MtaStsLive::certs_ = nullptr;

TEST_F(MtaStsLive, EnforcePolicyFetchedAndParsed) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("20260101T000000");
  auto sts = make(options());
  Policy p = run(sts->policyFor("Example.ORG."));
  EXPECT_EQ(p.source, PolicySource::kFetched) << p.error;
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.mode, StsMode::kEnforce);
  EXPECT_EQ(p.mx, (std::vector<std::string>{"mx1.example.org", "*.mail.example.org"}));
  EXPECT_EQ(p.id, "20260101T000000");
  EXPECT_EQ(p.max_age, 86400u);
  EXPECT_TRUE(mxAllowed(p, "MX1.example.org."));
  EXPECT_TRUE(mxAllowed(p, "in.mail.example.org"));
  EXPECT_FALSE(mxAllowed(p, "mx.attacker.example"));
  EXPECT_EQ(txt_queries_, std::vector<std::string>{"_mta-sts.example.org"});
  EXPECT_EQ(address_queries_, std::vector<std::string>{"mta-sts.example.org"});
  EXPECT_EQ(server_->requests(), std::vector<std::string>{"GET /.well-known/mta-sts.txt mta-sts.example.org"});
  EXPECT_EQ(counters_.value("mta_sts.fetched"), 1u);
}

TEST_F(MtaStsLive, ChunkedBodyAndMediaTypeParameters) {
  startServer();
  server_->respond(200, "text/plain; charset=utf-8", kEnforcePolicy, /*chunked=*/true);
  publish("c1");
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kFetched) << p.error;
  EXPECT_EQ(p.mode, StsMode::kEnforce);
}

TEST_F(MtaStsLive, CachedOnSecondCall) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);
  now_ += std::chrono::hours(1);
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kCache);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.mode, StsMode::kEnforce);
  EXPECT_EQ(p.id, "a1");
  EXPECT_EQ(server_->requests().size(), 1u);
  EXPECT_EQ(txt_queries_.size(), 2u);  // the TXT record is checked every time (§5)
}

TEST_F(MtaStsLive, IdChangeTriggersRefetch) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  EXPECT_EQ(run(sts->policyFor("example.org")).mode, StsMode::kEnforce);
  server_->respond(200, "text/plain", kTestingPolicy);
  publish("b2");
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kFetched) << p.error;
  EXPECT_EQ(p.mode, StsMode::kTesting);
  EXPECT_EQ(p.id, "b2");
  EXPECT_EQ(p.mx, std::vector<std::string>{"mx9.example.org"});
  EXPECT_EQ(server_->requests().size(), 2u);
  EXPECT_EQ(sts->cached("example.org")->id, "b2");
}

TEST_F(MtaStsLive, FetchFailureKeepsUnexpiredCachedPolicy) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);

  // A new id but the policy server is gone: the unexpired policy stays in force (§5.1).
  server_->stop();
  publish("b2");
  now_ += std::chrono::hours(23);
  Policy kept = run(sts->policyFor("example.org"));
  EXPECT_EQ(kept.source, PolicySource::kCache);
  EXPECT_EQ(kept.mode, StsMode::kEnforce);
  EXPECT_EQ(kept.id, "a1");
  EXPECT_NE(kept.error.find("policy fetch failed"), std::string::npos) << kept.error;
  EXPECT_EQ(counters_.value("mta_sts.stale_kept"), 1u);

  // The TXT record vanishing does not end it either.
  txt_records_.clear();
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kCache);

  // Once max_age has passed, nothing is left.
  now_ += std::chrono::hours(2);
  publish("b2");
  Policy gone = run(sts->policyFor("example.org"));
  EXPECT_EQ(gone.source, PolicySource::kNone);
  EXPECT_NE(gone.error, "");
  EXPECT_FALSE(sts->cached("example.org"));
  EXPECT_TRUE(mxAllowed(gone, "anything.example"));
}

TEST_F(MtaStsLive, RedirectIsNotFollowed) {
  startServer();
  server_->respond(301, "text/plain", kEnforcePolicy, false,
                   {{"Location", "https://mta-sts.example.org/.well-known/other.txt"}});
  publish("a1");
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("301 redirect"), std::string::npos) << p.error;
  EXPECT_EQ(server_->requests().size(), 1u);
  EXPECT_EQ(counters_.value("mta_sts.fetch_failed"), 1u);
}

TEST_F(MtaStsLive, WrongContentTypeRefused) {
  startServer();
  server_->respond(200, "text/html", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("Content-Type text/html"), std::string::npos) << p.error;
  server_->respond(200, nullptr, kEnforcePolicy);
  p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("no Content-Type"), std::string::npos) << p.error;
}

TEST_F(MtaStsLive, CertificateForAnotherNameRefused) {
  startServer("mta-sts.example.net");
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("TLS handshake"), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("hostname mismatch"), std::string::npos) << p.error;
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(MtaStsLive, UntrustedCertificateRefused) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  MtaStsOptions o = options();
  o.ca_file.clear();  // nothing trusted
  auto sts = make(std::move(o));
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("certificate"), std::string::npos) << p.error;
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(MtaStsLive, BodyOver64KiBRefused) {
  std::string body = kEnforcePolicy;
  while (body.size() <= kStsMaxPolicyBytes) body += "x_padding: " + std::string(200, 'p') + "\r\n";
  startServer();
  publish("a1");
  auto sts = make(options());
  for (bool chunked : {false, true}) {
    server_->respond(200, "text/plain", body, chunked);
    Policy p = run(sts->policyFor("example.org"));
    EXPECT_EQ(p.source, PolicySource::kNone) << chunked;
    EXPECT_NE(p.error.find("over 65536 bytes"), std::string::npos) << p.error;
  }
}

TEST_F(MtaStsLive, CacheSurvivesRestart) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  MtaStsOptions o = options();
  o.cache_file = dir_ + "/mta-sts-cache.json";
  {
    auto sts = make(o);
    EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);
  }
  server_->stop();
  auto again = make(o);
  EXPECT_EQ(again->cacheSize(), 1u);
  Policy p = run(again->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kCache) << p.error;
  EXPECT_EQ(p.mode, StsMode::kEnforce);
  // A damaged cache file costs a refetch, not the start.
  writeText(o.cache_file, "{not json");
  auto damaged = make(o);
  ASSERT_TRUE(damaged);
  EXPECT_EQ(damaged->cacheSize(), 0u);
  EXPECT_EQ(counters_.value("mta_sts.cache_unreadable"), 1u);
}

TEST_F(MtaStsLive, NoRecordMeansNoPolicy) {
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(address_queries_.empty());
  txt_records_ = {"v=STSv1; id=a", "v=STSv1; id=b"};
  p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("invalid TXT record"), std::string::npos) << p.error;
  EXPECT_TRUE(address_queries_.empty());
  EXPECT_EQ(run(sts->policyFor("bad domain")).source, PolicySource::kNone);
}

TEST_F(MtaStsLive, TxtLookupFailureKeepsCachedPolicy) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  txt_fails_ = true;
  Policy none = run(sts->policyFor("example.org"));
  EXPECT_EQ(none.source, PolicySource::kNone);
  EXPECT_NE(none.error.find("SERVFAIL"), std::string::npos) << none.error;
  txt_fails_ = false;
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);
  txt_fails_ = true;
  Policy kept = run(sts->policyFor("example.org"));
  EXPECT_EQ(kept.source, PolicySource::kCache);
  EXPECT_EQ(kept.mode, StsMode::kEnforce);
  EXPECT_NE(kept.error.find("SERVFAIL"), std::string::npos) << kept.error;
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(MtaStsLive, MaxAgeZeroIsNotCached) {
  startServer();
  server_->respond(200, "text/plain", "version: STSv1\nmode: enforce\nmx: mx1.example.org\nmax_age: 0\n");
  publish("a1");
  auto sts = make(options());
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);
  EXPECT_EQ(run(sts->policyFor("example.org")).source, PolicySource::kFetched);
  EXPECT_EQ(sts->cacheSize(), 0u);
  EXPECT_EQ(server_->requests().size(), 2u);
}

TEST_F(MtaStsLive, UnreachableAddressIsSkipped) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  addresses_ = {"127.0.0.2", "127.0.0.1"};  // the server listens on 127.0.0.1 only
  auto sts = make(options());
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_EQ(p.source, PolicySource::kFetched) << p.error;
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(MtaStsLive, ConcurrentLookupsShareOneFetch) {
  startServer();
  server_->respond(200, "text/plain", kEnforcePolicy);
  publish("a1");
  auto sts = make(options());
  asio::io_context io;
  std::vector<Policy> results;
  for (int i = 0; i < 5; ++i)
    asio::co_spawn(io, sts->policyFor("example.org"), [&](std::exception_ptr e, Policy p) {
      ASSERT_FALSE(e);
      results.push_back(std::move(p));
    });
  io.run();
  ASSERT_EQ(results.size(), 5u);
  for (const auto& p : results) {
    EXPECT_EQ(p.source, PolicySource::kFetched) << p.error;
    EXPECT_EQ(p.mode, StsMode::kEnforce);
    EXPECT_EQ(p.id, "a1");
  }
  EXPECT_EQ(server_->requests().size(), 1u);

  // A shared failure reaches every waiter, and the next lookup tries again.
  server_->respond(404, "text/plain", "");
  publish("b2");
  results.clear();
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(io, sts->policyFor("example.org"), [&](std::exception_ptr e, Policy p) {
      ASSERT_FALSE(e);
      results.push_back(std::move(p));
    });
  io.restart();
  io.run();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& p : results) {
    EXPECT_EQ(p.source, PolicySource::kCache);
    EXPECT_NE(p.error.find("HTTP 404"), std::string::npos) << p.error;
  }
  EXPECT_EQ(server_->requests().size(), 2u);
  server_->respond(200, "text/plain", kTestingPolicy);
  EXPECT_EQ(run(sts->policyFor("example.org")).mode, StsMode::kTesting);
  EXPECT_EQ(server_->requests().size(), 3u);
}

TEST_F(MtaStsLive, SilentServerTimesOut) {
  // A listener that never accepts: the kernel completes TCP, the TLS handshake never does.
  asio::io_context io;
  net::tcp::acceptor silent(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  publish("a1");
  MtaStsOptions o = options();
  o.port = silent.local_endpoint().port();
  o.fetch_timeout = std::chrono::milliseconds(300);
  auto sts = make(std::move(o));
  const auto start = std::chrono::steady_clock::now();
  Policy p = run(sts->policyFor("example.org"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(p.source, PolicySource::kNone);
  EXPECT_NE(p.error.find("timed out"), std::string::npos) << p.error;
}

}  // namespace
}  // namespace postern::delivery
