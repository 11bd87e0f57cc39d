// The SMTP client (smtp/client/client.h) against real servers: Postfix's smtp-sink, the
// aiosmtpd-based tests/e2e/mx_server.py (started as a subprocess), and a few scripted
// misbehaving servers on a thread.
#include "smtp/client/client.h"

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "smtp/client/dane.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace postern::smtp::client {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kSource = POSTERN_SOURCE_DIR;

// ---------------------------------------------------------------------------------------
// Running coroutines from a test

void run(std::function<net::awaitable<void>()> body) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

// ---------------------------------------------------------------------------------------
// Servers

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool canConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A child process; SIGTERM and reaped on destruction.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 2);
      ::close(fds[0]);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  // The first line the child prints, waiting up to `timeout`.
  std::string readLine(std::chrono::milliseconds timeout) {
    std::string line;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char ch;
      if (::read(out_, &ch, 1) != 1) break;
      if (ch == '\n') return line;
      line.push_back(ch);
    }
    return line;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

class SmtpSink {
 public:
  explicit SmtpSink(std::vector<std::string> options = {}) : port_(freePort()) {
    std::vector<std::string> argv = {"/usr/sbin/smtp-sink"};
    if (::getuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back("127.0.0.1:" + std::to_string(port_));
    argv.push_back("100");
    child_ = std::make_unique<Child>(argv);
    for (int i = 0; i < 100 && !canConnect(port_); ++i) std::this_thread::sleep_for(20ms);
  }
  tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }

 private:
  uint16_t port_;
  std::unique_ptr<Child> child_;
};

class MxServer {
 public:
  explicit MxServer(std::vector<std::string> options = {}) {
    dir_ = fs::temp_directory_path() / ("postern-mx-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<std::string> argv = {"/usr/bin/python3", kSource + "/tests/e2e/mx_server.py", "--host", "127.0.0.1",
                                     "--port", "0", "--record-dir", (dir_ / "records").string()};
    argv.insert(argv.end(), options.begin(), options.end());
    child_ = std::make_unique<Child>(argv);  // the port is read when first needed: servers start in parallel
  }
  ~MxServer() {
    child_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool up() {
    if (port_ == 0 && !waited_) {
      waited_ = true;
      std::string line = child_->readLine(10s);
      if (line.rfind("PORT ", 0) == 0) port_ = static_cast<uint16_t>(std::stoi(line.substr(5)));
    }
    return port_ != 0;
  }
  tcp::endpoint endpoint() {
    up();
    return {asio::ip::make_address("127.0.0.1"), port_};
  }

  struct Record {
    std::string meta;  // the JSON
    std::string data;
  };
  std::vector<Record> records(size_t expect = 0) const {
    std::vector<Record> out;
    for (int i = 0; i < 100; ++i) {
      out.clear();
      std::vector<fs::path> metas;
      if (fs::exists(dir_ / "records"))
        for (auto& e : fs::directory_iterator(dir_ / "records"))
          if (e.path().extension() == ".json") metas.push_back(e.path());
      std::sort(metas.begin(), metas.end());
      for (auto& m : metas) {
        auto eml = m;
        eml.replace_extension(".eml");
        out.push_back({slurp(m), slurp(eml)});
      }
      if (out.size() >= expect) break;
      std::this_thread::sleep_for(20ms);
    }
    return out;
  }

 private:
  static std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static inline int counter_ = 0;
  fs::path dir_;
  uint16_t port_ = 0;
  bool waited_ = false;
  std::unique_ptr<Child> child_;
};

// A server that follows a script on a thread: for each step, send `send` (if any), then
// read until `expect` arrived (if any); after the last step, close.
class ScriptedServer {
 public:
  struct Step {
    std::string send;
    std::string expect;
  };
  explicit ScriptedServer(std::vector<Step> script) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      for (const Step& s : script) {
        if (!s.send.empty()) ::send(c, s.send.data(), s.send.size(), MSG_NOSIGNAL);
        while (!s.expect.empty() && in.find(s.expect) == std::string::npos) {
          pollfd p{c, POLLIN, 0};
          if (::poll(&p, 1, 5000) <= 0) break;
          char buf[4096];
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        if (!s.expect.empty()) in.erase(0, in.find(s.expect) == std::string::npos ? in.size() : in.find(s.expect) + s.expect.size());
      }
      ::close(c);
    });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  tcp::endpoint endpoint() const { return {asio::ip::make_address("127.0.0.1"), port_}; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A test CA and a certificate it signed for mx.example.test, made once per run.
struct TestPki {
  fs::path dir;
  std::string ca, cert, key;
  TestPki() {
    dir = fs::temp_directory_path() / ("postern-client-pki-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ca = (dir / "ca.crt").string();
    cert = (dir / "mx.crt").string();
    key = (dir / "mx.key").string();
    std::ofstream(dir / "ext.cnf") << "subjectAltName=DNS:mx.example.test\n";
    std::string cmd = "cd " + dir.string() +
                      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30"
                      " -subj '/CN=Postern Test CA' -addext basicConstraints=critical,CA:TRUE"
                      " -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt"
                      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                      " -subj /CN=mx.example.test -keyout mx.key -out mx.csr"
                      " && openssl x509 -req -in mx.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30"
                      " -extfile ext.cnf -out mx.crt";
    cmd += " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~TestPki() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  bool ok = false;
};

TestPki& pki() {
  static TestPki p;
  return p;
}

const std::string kSelfSignedCert = kSource + "/tests/data/tls/cert.pem";  // CN mail.example.test
const std::string kSelfSignedKey = kSource + "/tests/data/tls/key.pem";

// ---------------------------------------------------------------------------------------
// Helpers

struct Ctx {
  SSL_CTX* ctx = nullptr;
  explicit Ctx(const std::string& ca = "") {
    std::string error;
    ctx = makeClientContext(ca, error);
    EXPECT_NE(ctx, nullptr) << error;
  }
  ~Ctx() { SSL_CTX_free(ctx); }
};

ClientOptions options(TlsMode mode = TlsMode::kNone, SSL_CTX* ctx = nullptr) {
  ClientOptions o;
  o.helo_name = "client.example.org";
  o.tls = mode;
  o.tls_ctx = ctx;
  o.timeouts.connect = 3s;
  o.timeouts.greeting = 5s;
  o.timeouts.command = 5s;
  o.timeouts.data_block = 5s;
  o.timeouts.data_end = 5s;
  return o;
}

Transaction tx(const std::string* body, std::vector<std::string> rcpts, std::string from = "sender@example.org") {
  Transaction t;
  t.mail_from = std::move(from);
  for (auto& r : rcpts) t.recipients.push_back(Recipient{r, "", ""});
  t.body = body;
  return t;
}

const std::string kBody = "From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nHello.\r\n";

using Opened = std::pair<std::unique_ptr<Connection>, std::optional<Failure>>;

std::vector<int> codes(const std::vector<Reply>& rs) {
  std::vector<int> out;
  for (const auto& r : rs) out.push_back(r.code);
  return out;
}

// ---------------------------------------------------------------------------------------
// smtp-sink

TEST(SmtpClient, SinkPipelinedSeveralTransactions) {
  SmtpSink sink;
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(sink.endpoint(), options());
    EXPECT_FALSE(o.second) << o.second->text();
    if (!o.first) co_return;
    Connection& c = *o.first;
    EXPECT_TRUE(c.capabilities().esmtp);
    EXPECT_TRUE(c.capabilities().pipelining);
    EXPECT_TRUE(c.capabilities().dsn);
    EXPECT_FALSE(c.tls());
    for (int i = 0; i < 3; ++i) {
      Transaction t = tx(&kBody, {"one@example.net", "two@example.net"});
      TransactionResult r = co_await c.send(t);
      EXPECT_FALSE(r.failure) << r.failure->text();
      EXPECT_EQ(codes(r.rcpt), (std::vector<int>{250, 250}));
      EXPECT_TRUE(r.data && r.data->code == 250);
      EXPECT_TRUE(r.reusable);
    }
    EXPECT_TRUE(co_await c.reset());
    co_await c.quit();
  });
}

TEST(SmtpClient, SinkWithoutPipelining) {
  SmtpSink sink({"-p"});
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(sink.endpoint(), options());
    EXPECT_FALSE(o.second);
    if (!o.first) co_return;
    EXPECT_FALSE(o.first->capabilities().pipelining);
    Transaction t = tx(&kBody, {"one@example.net", "two@example.net"});
    TransactionResult r = co_await o.first->send(t);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(codes(r.rcpt), (std::vector<int>{250, 250}));
    EXPECT_TRUE(r.data && r.data->code == 250);
    co_await o.first->quit();
  });
}

TEST(SmtpClient, EncryptWithoutStartTlsIsATlsFailure) {
  SmtpSink sink;  // no STARTTLS
  Ctx ctx;
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(sink.endpoint(), options(TlsMode::kEncrypt, ctx.ctx));
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kTls);
    // kMay carries on in plaintext.
    Opened m = co_await Connection::open(sink.endpoint(), options(TlsMode::kMay, ctx.ctx));
    EXPECT_FALSE(m.second);
    if (m.first) {
      EXPECT_FALSE(m.first->tls());
      co_await m.first->quit();
    }
  });
}

TEST(SmtpClient, ServerDisconnectsInsteadOfReplying) {
  SmtpSink sink({"-q", "RCPT"});
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(sink.endpoint(), options());
    if (!o.first) co_return;
    Transaction t = tx(&kBody, {"one@example.net"});
    TransactionResult r = co_await o.first->send(t);
    EXPECT_TRUE(r.failure && r.failure->kind == Failure::kProtocol);
    EXPECT_FALSE(r.reusable);
    TransactionResult again = co_await o.first->send(t);
    EXPECT_TRUE(again.failure);
    co_await o.first->quit();
  });
}

// ---------------------------------------------------------------------------------------
// mx_server.py

TEST(SmtpClient, PerRecipientReplies) {
  const std::vector<std::string> opts = {"--rule", "temp@=451 4.3.0 try later", "--rule",
                                         "perm@=550 5.1.1 no such user"};
  std::vector<std::string> without = opts;
  without.push_back("--no-pipelining");
  MxServer servers[2] = {MxServer(opts), MxServer(without)};
  for (bool pipelining : {true, false}) {
    MxServer& mx = servers[pipelining ? 0 : 1];
    ASSERT_TRUE(mx.up());
    run([&]() -> net::awaitable<void> {
      Opened o = co_await Connection::open(mx.endpoint(), options());
      EXPECT_FALSE(o.second);
      if (!o.first) co_return;
      EXPECT_EQ(o.first->capabilities().pipelining, pipelining);
      Transaction t = tx(&kBody, {"ok@example.net", "temp@example.net", "perm@example.net"});
      TransactionResult r = co_await o.first->send(t);
      EXPECT_FALSE(r.failure);
      EXPECT_EQ(codes(r.rcpt), (std::vector<int>{250, 451, 550}));
      if (r.rcpt.size() == 3) {
        EXPECT_EQ(r.rcpt[2].enhanced, "5.1.1");
        EXPECT_EQ(r.rcpt[1].text(), "451 4.3.0 try later");
      }
      EXPECT_TRUE(r.data && r.data->code == 250);
      co_await o.first->quit();
    });
    auto recs = mx.records(1);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_NE(recs[0].meta.find("\"rcpt_tos\": [\"ok@example.net\"]"), std::string::npos) << recs[0].meta;
    EXPECT_EQ(recs[0].data, kBody);
  }
}

TEST(SmtpClient, NoRecipientAcceptedKeepsTheConnection) {
  MxServer servers[2] = {MxServer({"--rule", "perm@=550 5.1.1 no such user"}),
                         MxServer({"--rule", "perm@=550 5.1.1 no such user", "--no-pipelining"})};
  for (bool pipelining : {true, false}) {
    MxServer& mx = servers[pipelining ? 0 : 1];
    ASSERT_TRUE(mx.up());
    run([&]() -> net::awaitable<void> {
      Opened o = co_await Connection::open(mx.endpoint(), options());
      if (!o.first) co_return;
      Transaction bad = tx(&kBody, {"perm@example.net", "perm@example.com"});
      TransactionResult r = co_await o.first->send(bad);
      EXPECT_FALSE(r.failure);
      EXPECT_EQ(codes(r.rcpt), (std::vector<int>{550, 550}));
      EXPECT_FALSE(r.data);
      EXPECT_TRUE(r.reusable);
      Transaction good = tx(&kBody, {"ok@example.net"});
      TransactionResult g = co_await o.first->send(good);
      EXPECT_FALSE(g.failure);
      EXPECT_TRUE(g.data && g.data->code == 250);
      co_await o.first->quit();
    });
    EXPECT_EQ(mx.records(1).size(), 1u);
  }
}

TEST(SmtpClient, StartTlsMayAndEncrypt) {
  MxServer mx({"--starttls", kSelfSignedCert, kSelfSignedKey});
  ASSERT_TRUE(mx.up());
  Ctx ctx;
  run([&]() -> net::awaitable<void> {
    for (TlsMode mode : {TlsMode::kMay, TlsMode::kEncrypt}) {
      ClientOptions opt = options(mode, ctx.ctx);
      opt.tls_name = "mail.example.test";
      Opened o = co_await Connection::open(mx.endpoint(), opt);
      EXPECT_FALSE(o.second) << o.second->text();
      if (!o.first) continue;
      EXPECT_TRUE(o.first->tls());
      EXPECT_FALSE(o.first->verified());  // self-signed
      EXPECT_FALSE(o.first->capabilities().starttls);  // the EHLO after TLS
      EXPECT_FALSE(o.first->tlsInfo().version.empty());
      Transaction t = tx(&kBody, {"ok@example.net"});
      TransactionResult r = co_await o.first->send(t);
      EXPECT_TRUE(r.data && r.data->code == 250);
      co_await o.first->quit();
    }
  });
  auto recs = mx.records(2);
  ASSERT_EQ(recs.size(), 2u);
  for (auto& rec : recs) EXPECT_NE(rec.meta.find("\"tls\": true"), std::string::npos);
}

TEST(SmtpClient, VerifyFailsForSelfSigned) {
  MxServer mx({"--starttls", kSelfSignedCert, kSelfSignedKey});
  ASSERT_TRUE(mx.up());
  Ctx ctx;
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kVerify, ctx.ctx);
    opt.tls_name = "mail.example.test";
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kTls);
    if (o.second) {
      EXPECT_NE(o.second->detail.find("verify"), std::string::npos) << o.second->text();
    }
    EXPECT_FALSE(o.second && o.second->permanent());
  });
}

// "3 1 1": SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 6698 §2.1).
std::vector<uint8_t> spkiSha256(const std::string& pem_path) {
  std::vector<uint8_t> out(SHA256_DIGEST_LENGTH);
  FILE* f = std::fopen(pem_path.c_str(), "r");
  if (!f) return {};
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!x) return {};
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
  SHA256(der, static_cast<size_t>(n), out.data());
  OPENSSL_free(der);
  X509_free(x);
  return out;
}

// DANE-EE(3) binds the key: the certificate's name (mail.example.test) is not the one asked
// for, and it is self-signed, yet it verifies (RFC 7672 §3.1.1).
TEST(SmtpClient, DaneEeMatchIgnoresNameAndIssuer) {
  MxServer mx({"--starttls", kSelfSignedCert, kSelfSignedKey});
  ASSERT_TRUE(mx.up());
  Ctx ctx;
  auto hash = spkiSha256(kSelfSignedCert);
  ASSERT_EQ(hash.size(), kSha256Size);
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kMay, ctx.ctx);
    opt.tls_name = "mx.elsewhere.test";
    opt.dane_tlsa = {dns::TlsaData{kUsageDaneEe, kSelectorSpki, kMatchSha256, hash}};
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.second) << o.second->text();
    if (o.first) {
      EXPECT_TRUE(o.first->tls());
      EXPECT_TRUE(o.first->verified());
      EXPECT_EQ(o.first->dane(), "dane-ee");
      co_await o.first->quit();
    }
  });
}

TEST(SmtpClient, DaneMismatchIsATlsFailureNamingDane) {
  MxServer mx({"--starttls", kSelfSignedCert, kSelfSignedKey});
  ASSERT_TRUE(mx.up());
  Ctx ctx;
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kMay, ctx.ctx);
    opt.tls_name = "mail.example.test";
    opt.dane_tlsa = {dns::TlsaData{kUsageDaneEe, kSelectorSpki, kMatchSha256, std::vector<uint8_t>(kSha256Size, 0)}};
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second);
    if (!o.second) co_return;
    EXPECT_EQ(o.second->kind, Failure::kTls);
    EXPECT_NE(o.second->text().find("DANE: certificate does not match the TLSA records"), std::string::npos)
        << o.second->text();
    EXPECT_FALSE(o.second->permanent());
  });
}

TEST(SmtpClient, DaneWithOnlyPkixRecordsIsRefused) {
  MxServer mx({"--starttls", kSelfSignedCert, kSelfSignedKey});
  ASSERT_TRUE(mx.up());
  Ctx ctx;
  auto hash = spkiSha256(kSelfSignedCert);
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kMay, ctx.ctx);
    opt.tls_name = "mail.example.test";
    opt.dane_tlsa = {dns::TlsaData{1, kSelectorSpki, kMatchSha256, hash}};   // PKIX-EE: not for SMTP
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second);
    if (!o.second) co_return;
    EXPECT_NE(o.second->text().find("DANE: no usable TLSA record"), std::string::npos) << o.second->text();
  });
}

TEST(SmtpClientDane, UsableRecordsForSmtp) {
  using dns::TlsaData;
  std::vector<uint8_t> h32(32, 1), h64(64, 1), h31(31, 1);
  struct Case {
    TlsaData r;
    bool usable;
  } cases[] = {
      {{3, 1, 1, h32}, true},  {{2, 0, 1, h32}, true},  {{3, 0, 2, h64}, true},  {{2, 1, 0, h31}, true},
      {{0, 0, 1, h32}, false}, {{1, 1, 1, h32}, false}, {{4, 1, 1, h32}, false}, {{3, 2, 1, h32}, false},
      {{3, 1, 3, h32}, false}, {{3, 1, 1, h31}, false}, {{3, 1, 2, h32}, false}, {{3, 1, 0, {}}, false},
  };
  std::vector<TlsaData> all;
  size_t usable = 0;
  for (const auto& c : cases) {
    EXPECT_EQ(usableForSmtp(c.r), c.usable) << int(c.r.usage) << " " << int(c.r.selector) << " "
                                            << int(c.r.matching_type) << " len " << c.r.data.size();
    all.push_back(c.r);
    usable += c.usable;
  }
  auto kept = usableTlsa(all);
  ASSERT_EQ(kept.size(), usable);
  EXPECT_EQ(kept[0], cases[0].r);
  EXPECT_STREQ(daneUsageName(2), "dane-ta");
  EXPECT_STREQ(daneUsageName(3), "dane-ee");
  EXPECT_STREQ(daneUsageName(1), "");
}

TEST(SmtpClient, VerifyWithTheTestCa) {
  ASSERT_TRUE(pki().ok);
  MxServer mx({"--starttls", pki().cert, pki().key});
  ASSERT_TRUE(mx.up());
  Ctx ctx(pki().ca);
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kVerify, ctx.ctx);
    opt.tls_name = "mx.example.test";
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.second) << o.second->text();
    if (o.first) {
      EXPECT_TRUE(o.first->verified());
      EXPECT_TRUE(o.first->tls());
      Transaction t = tx(&kBody, {"ok@example.net"});
      TransactionResult r = co_await o.first->send(t);
      EXPECT_TRUE(r.data && r.data->code == 250);
      co_await o.first->quit();
    }
    // The right chain for the wrong name.
    opt.tls_name = "other.example.test";
    Opened w = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(w.first);
    EXPECT_TRUE(w.second && w.second->kind == Failure::kTls);
    // kEncrypt records the outcome without failing.
    ClientOptions enc = options(TlsMode::kEncrypt, ctx.ctx);
    enc.tls_name = "mx.example.test";
    Opened e = co_await Connection::open(mx.endpoint(), enc);
    EXPECT_TRUE(e.first && e.first->verified());
    if (e.first) co_await e.first->quit();
  });
}

TEST(SmtpClient, ImplicitTls) {
  ASSERT_TRUE(pki().ok);
  MxServer mx({"--implicit-tls", pki().cert, pki().key});
  ASSERT_TRUE(mx.up());
  Ctx ctx(pki().ca);
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options(TlsMode::kImplicit, ctx.ctx);
    opt.tls_name = "mx.example.test";
    Opened o = co_await Connection::open(mx.endpoint(), opt);
    EXPECT_FALSE(o.second) << o.second->text();
    if (!o.first) co_return;
    EXPECT_TRUE(o.first->tls());
    EXPECT_TRUE(o.first->verified());
    Transaction t = tx(&kBody, {"ok@example.net"});
    TransactionResult r = co_await o.first->send(t);
    EXPECT_TRUE(r.data && r.data->code == 250);
    co_await o.first->quit();
  });
  EXPECT_EQ(mx.records(1).size(), 1u);
}

TEST(SmtpClient, AuthOverStartTls) {
  const std::string all[2] = {"PLAIN,LOGIN", "LOGIN"};
  MxServer servers[2] = {
      MxServer({"--starttls", kSelfSignedCert, kSelfSignedKey, "--user", "alice:s3cret pass", "--auth-mechanisms", all[0]}),
      MxServer({"--starttls", kSelfSignedCert, kSelfSignedKey, "--user", "alice:s3cret pass", "--auth-mechanisms", all[1]})};
  for (int i = 0; i < 2; ++i) {
    const std::string& mechs = all[i];
    MxServer& mx = servers[i];
    ASSERT_TRUE(mx.up());
    Ctx ctx;
    run([&]() -> net::awaitable<void> {
      ClientOptions opt = options(TlsMode::kEncrypt, ctx.ctx);
      opt.auth_user = "alice";
      opt.auth_password = "s3cret pass";
      Opened o = co_await Connection::open(mx.endpoint(), opt);
      EXPECT_FALSE(o.second) << mechs << ": " << o.second->text();
      if (o.first) {
        Transaction t = tx(&kBody, {"ok@example.net"});
        TransactionResult r = co_await o.first->send(t);
        EXPECT_TRUE(r.data && r.data->code == 250);
        co_await o.first->quit();
      }
      opt.auth_password = "wrong";
      Opened bad = co_await Connection::open(mx.endpoint(), opt);
      EXPECT_FALSE(bad.first);
      EXPECT_TRUE(bad.second && bad.second->kind == Failure::kAuth && bad.second->reply) << mechs;
      // Never in plaintext unless allowed.
      ClientOptions plain = options(TlsMode::kNone);
      plain.auth_user = "alice";
      plain.auth_password = "s3cret pass";
      Opened p = co_await Connection::open(mx.endpoint(), plain);
      EXPECT_FALSE(p.first);
      EXPECT_TRUE(p.second && p.second->kind == Failure::kAuth);
    });
    auto recs = mx.records(1);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_NE(recs[0].meta.find("\"auth_user\": \"alice\""), std::string::npos) << recs[0].meta;
  }
}

TEST(SmtpClient, Smtputf8RefusedLocallyWhenNotOffered) {
  MxServer mx;
  ASSERT_TRUE(mx.up());
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(mx.endpoint(), options());
    if (!o.first) co_return;
    EXPECT_FALSE(o.first->capabilities().smtputf8);
    Transaction t = tx(&kBody, {"j\xc3\xbcrgen@example.net", "ok@example.net"}, "s\xc3\xa9nder@example.org");
    t.smtputf8 = true;
    TransactionResult r = co_await o.first->send(t);
    EXPECT_TRUE(r.failure && r.failure->permanent());
    EXPECT_EQ(r.rcpt.size(), 2u);
    for (auto& rr : r.rcpt) {
      EXPECT_EQ(rr.code, 553);
      EXPECT_EQ(rr.enhanced, "5.6.7");
    }
    EXPECT_TRUE(r.reusable);
    Transaction ok = tx(&kBody, {"ok@example.net"});
    TransactionResult g = co_await o.first->send(ok);
    EXPECT_TRUE(g.data && g.data->code == 250);
    co_await o.first->quit();
  });
  EXPECT_EQ(mx.records(1).size(), 1u);
}

TEST(SmtpClient, ParametersFollowTheServersExtensions) {
  MxServer mx({"--smtputf8", "--dsn", "--size", "1000"});
  MxServer plain({"--no-size"});
  ASSERT_TRUE(mx.up() && plain.up());
  std::string big(2000, 'x');
  run([&]() -> net::awaitable<void> {
    for (MxServer* server : {&mx, &plain}) {
      Opened o = co_await Connection::open(server->endpoint(), options());
      if (!o.first) co_return;
      Transaction t = tx(&kBody, {"ok@example.net"}, "s\xc3\xa9nder@example.org");
      t.smtputf8 = server == &mx;
      t.eightbit = true;
      t.ret = "HDRS";
      t.envid = "id+1 x";
      t.recipients[0].notify = "SUCCESS,FAILURE";
      t.recipients[0].orcpt = "rfc822;ok+tag@example.net";
      TransactionResult r = co_await o.first->send(t);
      EXPECT_TRUE(r.data && r.data->code == 250);
      if (server == &mx) {
        Transaction b = tx(&big, {"ok@example.net"});
        TransactionResult tb = co_await o.first->send(b);
        EXPECT_TRUE(tb.failure && tb.failure->permanent());
        EXPECT_EQ(codes(tb.rcpt), (std::vector<int>{552}));
        if (tb.failure && tb.failure->reply) {
          EXPECT_EQ(tb.failure->reply->enhanced, "5.3.4");
        }
        EXPECT_TRUE(tb.reusable);
      }
      co_await o.first->quit();
    }
  });
  auto recs = mx.records(1);
  ASSERT_EQ(recs.size(), 1u);
  const std::string& m = recs[0].meta;
  EXPECT_NE(m.find("\"SIZE=" + std::to_string(kBody.size()) + "\""), std::string::npos) << m;
  EXPECT_NE(m.find("BODY=8BITMIME"), std::string::npos) << m;
  EXPECT_NE(m.find("SMTPUTF8"), std::string::npos) << m;
  EXPECT_NE(m.find("RET=HDRS"), std::string::npos) << m;
  EXPECT_NE(m.find("ENVID=id+2B1+20x"), std::string::npos) << m;
  EXPECT_NE(m.find("NOTIFY=SUCCESS,FAILURE"), std::string::npos) << m;
  EXPECT_NE(m.find("ORCPT=rfc822;ok+2Btag@example.net"), std::string::npos) << m;
  auto precs = plain.records(1);
  ASSERT_EQ(precs.size(), 1u);
  const std::string& p = precs[0].meta;
  EXPECT_EQ(p.find("SIZE="), std::string::npos) << p;
  EXPECT_EQ(p.find("RET="), std::string::npos) << p;
  EXPECT_EQ(p.find("NOTIFY="), std::string::npos) << p;
  EXPECT_EQ(p.find("SMTPUTF8"), std::string::npos) << p;
}

TEST(SmtpClient, DotStuffingArrivesIntact) {
  MxServer mx;
  ASSERT_TRUE(mx.up());
  std::string body = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nnot the end\r\n. \r\n";
  for (int i = 0; i < 2000; ++i) body += (i % 3 ? "" : ".") + std::string(70, 'y') + "\r\n";  // several blocks
  body += ".last";
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(mx.endpoint(), options());
    if (!o.first) co_return;
    Transaction t = tx(&body, {"ok@example.net"});
    TransactionResult r = co_await o.first->send(t);
    EXPECT_TRUE(r.data && r.data->code == 250);
    co_await o.first->quit();
  });
  auto recs = mx.records(1);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].data, body + "\r\n");
}

TEST(SmtpClient, GreetingAndEhloRefusals) {
  MxServer refuse({"--greeting", "554 5.3.2 no service here"});
  MxServer old({"--ehlo", "502 5.5.1 EHLO not implemented"});
  ASSERT_TRUE(refuse.up() && old.up());
  run([&]() -> net::awaitable<void> {
    Opened r = co_await Connection::open(refuse.endpoint(), options());
    EXPECT_FALSE(r.first);
    EXPECT_TRUE(r.second && r.second->kind == Failure::kGreeting && r.second->permanent());
    Opened o = co_await Connection::open(old.endpoint(), options());
    EXPECT_FALSE(o.second);
    if (!o.first) co_return;
    EXPECT_FALSE(o.first->capabilities().esmtp);
    Transaction t = tx(&kBody, {"ok@example.net"});
    TransactionResult tr = co_await o.first->send(t);
    EXPECT_TRUE(tr.data && tr.data->code == 250);
    co_await o.first->quit();
  });
}

// ---------------------------------------------------------------------------------------
// Scripted misbehaviour

TEST(SmtpClient, ServerClosesMidReply) {
  ScriptedServer s(std::vector<ScriptedServer::Step>{{"220 fake ESMTP\r\n", "EHLO"}, {"250-fake\r\n250-PIPELI", ""}});
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(s.endpoint(), options());
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kProtocol) << (o.second ? o.second->text() : "");
  });
}

TEST(SmtpClient, ServerClosesMidReplyInATransaction) {
  ScriptedServer s(std::vector<ScriptedServer::Step>{
      {"220 fake ESMTP\r\n", "EHLO"}, {"250-fake\r\n250 PIPELINING\r\n", "DATA\r\n"}, {"250 2.1.0 ok\r\n25", ""}});
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(s.endpoint(), options());
    EXPECT_FALSE(o.second);
    if (!o.first) co_return;
    Transaction t = tx(&kBody, {"ok@example.net"});
    TransactionResult r = co_await o.first->send(t);
    EXPECT_TRUE(r.failure && r.failure->kind == Failure::kProtocol);
    EXPECT_TRUE(r.mail && r.mail->code == 250);
    EXPECT_FALSE(r.reusable);
    co_await o.first->quit();
  });
}

TEST(SmtpClient, GarbageIsAProtocolFailure) {
  ScriptedServer s(std::vector<ScriptedServer::Step>{{"HTTP/1.1 400 Bad Request\r\n\r\n", "EHLO"}});
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(s.endpoint(), options());
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kProtocol) << (o.second ? o.second->text() : "");
  });
}

TEST(SmtpClient, SilentServerTimesOut) {
  ScriptedServer s(std::vector<ScriptedServer::Step>{{"", "never"}});
  run([&]() -> net::awaitable<void> {
    ClientOptions opt = options();
    opt.timeouts.greeting = 300ms;
    auto start = std::chrono::steady_clock::now();
    Opened o = co_await Connection::open(s.endpoint(), opt);
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kTimeout) << (o.second ? o.second->text() : "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  });
}

TEST(SmtpClient, ConnectRefused) {
  uint16_t port = freePort();
  run([&]() -> net::awaitable<void> {
    Opened o = co_await Connection::open(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), options());
    EXPECT_FALSE(o.first);
    EXPECT_TRUE(o.second && o.second->kind == Failure::kConnect);
    if (o.second) {
      EXPECT_FALSE(o.second->text().empty());
    }
  });
}

}  // namespace
}  // namespace postern::smtp::client
