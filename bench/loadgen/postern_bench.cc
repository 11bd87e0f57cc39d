// postern-bench: an SMTP load generator for loopback benchmarks (RFC 5321 client side,
// RFC 3207 STARTTLS, RFC 8314 implicit TLS, RFC 4954 AUTH PLAIN, HAProxy PROXY v1/v2).
//
// N sessions run concurrently; together they send M messages (or fewer when
// --duration-max passes first), K per connection. Latency is measured from the moment the
// final "." of DATA is written to the moment the 250 arrives. A summary is printed for
// people and then one JSON line for scripts (the last line of stdout).
//
// --dkim-key FILE [--dkim-selector S]: the message is signed once at start with Postern's own
// signer (dkim/signer.h; rsa-sha256 or ed25519-sha256 as the key is), d= the --from domain,
// so that receivers' DKIM verification has work to do (bench/run-bench "verify" loads).
//
// Idle mode (--idle N --hold SECS): opens N connections, completes greeting, TLS and EHLO,
// prints "IDLE-READY <n>" and holds them for SECS; used to measure per-connection memory.
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "dkim/signer.h"
#include "net/asio.h"
#include "net/stream.h"
#include "tls/tls_context.h"
#include "util/base64.h"

namespace postern::bench {
namespace {

using Clock = std::chrono::steady_clock;
using net::awaitable;
using net::tcp;
using net::use_nothrow;

inline constexpr size_t kMaxReplyBytes = 64 * 1024;      // a reply longer than this is an error
inline constexpr auto kIoTimeout = std::chrono::seconds(60);
inline constexpr auto kWatchdogGrace = std::chrono::seconds(1);
inline constexpr size_t kBodyLineLength = 76;

enum class Mode { kPlain, kStartTls, kTls };

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 25;
  unsigned sessions = 10;
  uint64_t messages = 1000;
  size_t size = 4096;
  unsigned rcpts = 1;
  unsigned per_conn = 1;
  Mode mode = Mode::kPlain;
  std::string auth;                 // user:pass
  int proxy = 0;                    // 0 none, 1 v1, 2 v2
  std::string proxy_src = "192.0.2.1";
  std::string from = "bench@example.test";
  std::vector<std::string> to{"bench@example.test"};
  double duration_max = 60;
  unsigned threads = 1;
  std::string ehlo = "bench.example.test";
  unsigned idle = 0;                // idle mode: connections to hold
  double hold = 5;
  bool quiet = false;
  std::string dkim_key;             // PEM (or rspamd's base64 Ed25519) private key file
  std::string dkim_selector = "bench";
};

// What one thread saw; merged at the end.
struct Tally {
  uint64_t messages_ok = 0;
  uint64_t messages_failed = 0;
  uint64_t connections = 0;         // sessions that reached the greeting
  uint64_t bytes = 0;
  std::vector<double> latency_ms;   // end of DATA -> 250
  std::map<std::string, uint64_t> errors;
  uint64_t idle_ready = 0;
};

struct Shared {
  const Options* opt;
  std::string body;                 // dot-stuffed message (no terminating ".")
  Clock::time_point end;            // --duration-max
  std::atomic<uint64_t> next{0};    // message slots claimed
  std::atomic<uint64_t> idle_ready{0};
  std::atomic<bool> stop{false};
  SSL_CTX* tls = nullptr;
  tcp::endpoint target;
};

// A message of about `size` bytes: a few headers, then lines of letters (nothing to dot-stuff).
std::string makeBody(const Options& o) {
  std::string m = fmt::format(
      "From: <{}>\r\nTo: <{}>\r\nSubject: postern-bench\r\nMessage-ID: <bench@{}>\r\n"
      "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n",
      o.from, o.to.front(), o.ehlo);
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t i = 0;
  while (m.size() + 2 < o.size) {
    size_t n = std::min(kBodyLineLength, o.size - m.size() - 2);
    for (size_t k = 0; k < n; ++k) m.push_back(kAlphabet[(i + k) % (sizeof kAlphabet - 1)]);
    m += "\r\n";
    ++i;
  }
  return m;
}

// The message with a DKIM-Signature field on top: key from --dkim-key, d= the --from domain.
Result<std::string> signBody(const Options& o, const std::string& body) {
  std::FILE* f = std::fopen(o.dkim_key.c_str(), "rb");
  if (!f) return Status::io(fmt::format("cannot read {}: {}", o.dkim_key, std::strerror(errno)));
  std::string pem;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) pem.append(buf, n);
  std::fclose(f);
  auto key = dkim::parsePrivateKey(pem);
  if (!key) return key.status();
  auto at = o.from.rfind('@');
  if (at == std::string::npos) return Status::invalid("--from has no domain to sign for");
  key->domain = o.from.substr(at + 1);
  key->selector = o.dkim_selector;
  auto field = dkim::signMessage(body, *key, static_cast<int64_t>(std::time(nullptr)));
  if (!field) return field.status();
  return *field + body;
}

// PROXY v1 (text) or v2 (binary) header for an IPv4 TCP connection (haproxy proxy-protocol.txt).
std::string proxyHeader(int version, const std::string& src, uint16_t src_port, const tcp::endpoint& dst) {
  asio::error_code ec;
  auto s = asio::ip::make_address_v4(src, ec);
  auto d = dst.address().is_v4() ? dst.address().to_v4() : asio::ip::address_v4::loopback();
  if (version == 1) return fmt::format("PROXY TCP4 {} {} {} {}\r\n", s.to_string(), d.to_string(), src_port, dst.port());
  static constexpr unsigned char kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::string h(reinterpret_cast<const char*>(kSig), sizeof kSig);
  h.push_back(static_cast<char>(0x21));   // version 2, PROXY
  h.push_back(static_cast<char>(0x11));   // TCP over IPv4
  h.push_back(0);
  h.push_back(12);
  auto sb = s.to_bytes();
  auto db = d.to_bytes();
  h.append(reinterpret_cast<const char*>(sb.data()), 4);
  h.append(reinterpret_cast<const char*>(db.data()), 4);
  h.push_back(static_cast<char>(src_port >> 8));
  h.push_back(static_cast<char>(src_port & 0xff));
  h.push_back(static_cast<char>(dst.port() >> 8));
  h.push_back(static_cast<char>(dst.port() & 0xff));
  return h;
}

// One SMTP client connection with a line buffer.
class Client {
 public:
  Client(std::shared_ptr<net::Stream> s) : s_(std::move(s)) {}

  // Reads one (possibly multi-line) reply; returns its code, or a negative value:
  // -1 I/O error or timeout, -2 malformed or oversized.
  awaitable<int> reply() {
    int code = -2;
    for (;;) {
      size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos) {
        if (buf_.size() > kMaxReplyBytes) co_return -2;
        char tmp[4096];
        auto [ec, n] = co_await s_->readSome(tmp, sizeof tmp);
        if (ec || n == 0) co_return -1;
        buf_.append(tmp, n);
      }
      std::string line = buf_.substr(0, eol);
      buf_.erase(0, eol + 2);
      if (line.size() < 3) co_return -2;
      code = std::atoi(line.substr(0, 3).c_str());
      last_ = line;
      if (line.size() == 3 || line[3] == ' ') co_return code;
    }
  }
  awaitable<bool> send(const std::string& data) {
    std::error_code ec = co_await s_->writeAll(data);
    co_return !ec;
  }
  // Sends `cmd` and reads the reply.
  awaitable<int> command(const std::string& cmd) {
    bool sent = co_await send(cmd);
    if (!sent) co_return -1;
    int code = co_await reply();
    co_return code;
  }
  const std::string& lastLine() const { return last_; }
  net::Stream& stream() { return *s_; }
  bool bufferEmpty() const { return buf_.empty(); }

 private:
  std::shared_ptr<net::Stream> s_;
  std::string buf_;
  std::string last_;
};

awaitable<void> watch(std::shared_ptr<net::Stream> s) { co_await s->runWatchdog(kWatchdogGrace); }

void fail(Tally& t, std::string_view stage, int code) {
  std::string key = code > 0 ? fmt::format("{}:{}", stage, code)
                             : fmt::format("{}:{}", stage, code == -1 ? "io" : "malformed");
  t.errors[key]++;
}

std::string errorKey(std::string_view stage, const std::string& what) { return fmt::format("{}:{}", stage, what); }

// Greeting, PROXY header, TLS and EHLO (and AUTH). False after counting the error.
awaitable<bool> open(Shared& sh, Client& c, Tally& t, uint16_t src_port) {
  const Options& o = *sh.opt;
  auto& s = c.stream();
  if (o.proxy) {
    std::string h = proxyHeader(o.proxy, o.proxy_src, src_port, sh.target);
    bool sent = co_await c.send(h);
    if (!sent) {
      t.errors["proxy:io"]++;
      co_return false;
    }
  }
  std::string reason;
  if (o.mode == Mode::kTls) {
    std::string sni = "localhost";
    bool up = co_await s.connectTls(sh.tls, sni, reason);
    if (!up) {
      t.errors[errorKey("tls", reason.empty() ? "handshake" : reason)]++;
      co_return false;
    }
  }
  int code = co_await c.reply();
  if (code != 220) {
    fail(t, "greeting", code);
    co_return false;
  }
  t.connections++;
  std::string ehlo = "EHLO " + o.ehlo + "\r\n";
  code = co_await c.command(ehlo);
  if (code != 250) {
    fail(t, "ehlo", code);
    co_return false;
  }
  if (o.mode == Mode::kStartTls) {
    std::string cmd = "STARTTLS\r\n";
    code = co_await c.command(cmd);
    if (code != 220) {
      fail(t, "starttls", code);
      co_return false;
    }
    std::string sni = "localhost";
    bool up = co_await s.connectTls(sh.tls, sni, reason);
    if (!up) {
      t.errors[errorKey("tls", reason.empty() ? "handshake" : reason)]++;
      co_return false;
    }
    code = co_await c.command(ehlo);
    if (code != 250) {
      fail(t, "ehlo", code);
      co_return false;
    }
  }
  if (!o.auth.empty()) {
    auto colon = o.auth.find(':');
    std::string user = o.auth.substr(0, colon);
    std::string pass = colon == std::string::npos ? "" : o.auth.substr(colon + 1);
    std::string plain = std::string(1, '\0') + user + std::string(1, '\0') + pass;
    std::string cmd = "AUTH PLAIN " + base64Encode(plain) + "\r\n";
    code = co_await c.command(cmd);
    if (code != 235) {
      fail(t, "auth", code);
      co_return false;
    }
  }
  co_return true;
}

// One transaction. False when the connection should not be used further.
awaitable<bool> transaction(Shared& sh, Client& c, Tally& t, bool& delivered) {
  const Options& o = *sh.opt;
  std::string cmd = "MAIL FROM:<" + o.from + ">\r\n";
  int code = co_await c.command(cmd);
  if (code != 250) {
    fail(t, "mail", code);
    co_return false;
  }
  unsigned accepted = 0;
  for (unsigned i = 0; i < o.rcpts; ++i) {
    cmd = "RCPT TO:<" + o.to[i % o.to.size()] + ">\r\n";
    code = co_await c.command(cmd);
    if (code == 250 || code == 251) {
      ++accepted;
    } else {
      fail(t, "rcpt", code);
      if (code < 0) co_return false;
    }
  }
  if (accepted == 0) {
    cmd = "RSET\r\n";
    code = co_await c.command(cmd);
    co_return code == 250;
  }
  cmd = "DATA\r\n";
  code = co_await c.command(cmd);
  if (code != 354) {
    fail(t, "data", code);
    co_return false;
  }
  bool sent = co_await c.send(sh.body);
  if (!sent) {
    fail(t, "body", -1);
    co_return false;
  }
  std::string dot = ".\r\n";
  auto t0 = Clock::now();
  code = co_await c.command(dot);
  auto t1 = Clock::now();
  if (code != 250) {
    fail(t, "dot", code);
    co_return code > 0;
  }
  t.latency_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  t.bytes += sh.body.size();
  delivered = true;
  co_return true;
}

// One session: connections one after another until the message slots or the time run out.
awaitable<void> session(Shared& sh, Tally& t, unsigned index) {
  const Options& o = *sh.opt;
  auto ex = co_await asio::this_coro::executor;
  uint32_t conn_no = 0;
  while (!sh.stop.load(std::memory_order_relaxed) && Clock::now() < sh.end) {
    // Claim up to K message slots for this connection.
    uint64_t first = sh.next.fetch_add(o.per_conn);
    if (first >= o.messages) co_return;
    uint64_t want = std::min<uint64_t>(o.per_conn, o.messages - first);

    auto stream = std::make_shared<net::Stream>(tcp::socket(ex));
    auto deadline = std::min(Clock::now() + kIoTimeout, sh.end);
    stream->setDeadlineAt(deadline);
    asio::co_spawn(ex, watch(stream), asio::detached);
    Client c(stream);
    auto [ec] = co_await stream->socket().async_connect(sh.target, use_nothrow);
    uint64_t sent = 0;
    uint16_t src_port = static_cast<uint16_t>(1024 + (index * 7919u + conn_no++) % 64000u);
    if (ec) {
      t.errors[errorKey("connect", ec.message())]++;
    } else {
      std::error_code ignored;
      stream->socket().set_option(tcp::no_delay(true), ignored);
      bool opened = co_await open(sh, c, t, src_port);
      if (opened) {
        for (; sent < want; ++sent) {
          if (Clock::now() >= sh.end) break;
          stream->setDeadlineAt(std::min(Clock::now() + kIoTimeout, sh.end));
          // The tally is shared by every session on this thread, so success is reported by
          // the transaction itself, not inferred from the tally changing meanwhile.
          bool delivered = false;
          bool usable = co_await transaction(sh, c, t, delivered);
          if (delivered) t.messages_ok++;
          else t.messages_failed++;
          if (!usable) {
            ++sent;
            break;
          }
        }
        if (sent == want) {
          std::string quit = "QUIT\r\n";
          int ignored_code = co_await c.command(quit);
          (void)ignored_code;
        }
      }
    }
    if (stream->expired()) t.errors["timeout"]++;
    t.messages_failed += want - std::min(want, sent);   // never attempted (refused, failed setup, time up)
    stream->stopWatchdog();
    stream->close();
    if (ec) {
      // A refused connection: back off briefly rather than spin.
      asio::steady_timer pause(ex, std::chrono::milliseconds(10));
      co_await pause.async_wait(use_nothrow);
    }
  }
}

// Idle mode: open, hold, quit.
awaitable<void> idleSession(Shared& sh, Tally& t, unsigned index, asio::steady_timer& hold_until) {
  const Options& o = *sh.opt;
  auto ex = co_await asio::this_coro::executor;
  auto stream = std::make_shared<net::Stream>(tcp::socket(ex));
  stream->setDeadlineAt(sh.end);
  asio::co_spawn(ex, watch(stream), asio::detached);
  Client c(stream);
  auto [ec] = co_await stream->socket().async_connect(sh.target, use_nothrow);
  if (ec) {
    t.errors[errorKey("connect", ec.message())]++;
    stream->stopWatchdog();
    co_return;
  }
  bool opened = co_await open(sh, c, t, static_cast<uint16_t>(1024 + index % 64000u));
  if (opened) {
    t.idle_ready++;
    uint64_t n = sh.idle_ready.fetch_add(1) + 1;
    if (n == o.idle) {
      std::printf("IDLE-READY %llu\n", static_cast<unsigned long long>(n));
      std::fflush(stdout);
    }
    // The timer starts at "never"; re-arming it (once all are up) aborts this wait, so wait again.
    for (;;) {
      auto [wec] = co_await hold_until.async_wait(use_nothrow);
      if (!wec || Clock::now() >= hold_until.expiry()) break;
    }
    std::string quit = "QUIT\r\n";
    int ignored_code = co_await c.command(quit);
    (void)ignored_code;
  }
  stream->stopWatchdog();
  stream->close();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

std::string jsonEscape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out.push_back(ch);
  }
  return out;
}

void usage() {
  std::fprintf(stderr,
               "usage: postern-bench [--host 127.0.0.1] [--port 25] [--sessions N] [--messages M] [--size BYTES]\n"
               "         [--rcpts R] [--per-conn K] [--mode plain|starttls|tls] [--auth user:pass]\n"
               "         [--proxy v1|v2] [--proxy-src IP] [--from ADDR] [--to ADDR[,ADDR...]]\n"
               "         [--duration-max SECS] [--threads T] [--idle N --hold SECS] [--quiet]\n"
               "         [--dkim-key FILE [--dkim-selector S]]\n"
               "Loopback targets only. The last line of stdout is a JSON summary.\n");
}

std::optional<Options> parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> v;
    if (a == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (a == "--help" || a == "-h") return std::nullopt;
    if (!(v = val())) {
      std::fprintf(stderr, "postern-bench: %s needs a value\n", a.c_str());
      return std::nullopt;
    }
    try {
      if (a == "--host") o.host = *v;
      else if (a == "--port") o.port = static_cast<uint16_t>(std::stoul(*v));
      else if (a == "--sessions") o.sessions = static_cast<unsigned>(std::stoul(*v));
      else if (a == "--messages") o.messages = std::stoull(*v);
      else if (a == "--size") o.size = std::stoull(*v);
      else if (a == "--rcpts") o.rcpts = static_cast<unsigned>(std::stoul(*v));
      else if (a == "--per-conn") o.per_conn = static_cast<unsigned>(std::stoul(*v));
      else if (a == "--auth") o.auth = *v;
      else if (a == "--proxy-src") o.proxy_src = *v;
      else if (a == "--from") o.from = *v;
      else if (a == "--duration-max") o.duration_max = std::stod(*v);
      else if (a == "--threads") o.threads = static_cast<unsigned>(std::stoul(*v));
      else if (a == "--ehlo") o.ehlo = *v;
      else if (a == "--idle") o.idle = static_cast<unsigned>(std::stoul(*v));
      else if (a == "--hold") o.hold = std::stod(*v);
      else if (a == "--dkim-key") o.dkim_key = *v;
      else if (a == "--dkim-selector") o.dkim_selector = *v;
      else if (a == "--to") {
        o.to.clear();
        size_t p = 0;
        while (p <= v->size()) {
          size_t q = v->find(',', p);
          if (q == std::string::npos) q = v->size();
          if (q > p) o.to.push_back(v->substr(p, q - p));
          p = q + 1;
        }
        if (o.to.empty()) throw std::invalid_argument("empty --to");
      } else if (a == "--mode") {
        if (*v == "plain") o.mode = Mode::kPlain;
        else if (*v == "starttls") o.mode = Mode::kStartTls;
        else if (*v == "tls") o.mode = Mode::kTls;
        else throw std::invalid_argument("mode");
      } else if (a == "--proxy") {
        if (*v == "v1") o.proxy = 1;
        else if (*v == "v2") o.proxy = 2;
        else if (*v == "none") o.proxy = 0;
        else throw std::invalid_argument("proxy");
      } else {
        std::fprintf(stderr, "postern-bench: unknown option %s\n", a.c_str());
        return std::nullopt;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "postern-bench: bad value for %s: %s\n", a.c_str(), v->c_str());
      return std::nullopt;
    }
  }
  if (o.sessions == 0 || o.per_conn == 0 || o.rcpts == 0 || o.threads == 0 || o.duration_max <= 0) {
    std::fprintf(stderr, "postern-bench: --sessions, --per-conn, --rcpts, --threads and --duration-max must be > 0\n");
    return std::nullopt;
  }
  return o;
}

const char* modeName(Mode m) { return m == Mode::kPlain ? "plain" : m == Mode::kStartTls ? "starttls" : "tls"; }

int run(const Options& o) {
  asio::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec || !addr.is_loopback()) {
    std::fprintf(stderr, "postern-bench: --host must be a loopback address (127.0.0.0/8 or ::1), got %s\n", o.host.c_str());
    return 2;
  }
  Shared sh;
  sh.opt = &o;
  sh.target = tcp::endpoint(addr, o.port);
  sh.body = makeBody(o);
  if (!o.dkim_key.empty()) {
    auto signed_body = signBody(o, sh.body);
    if (!signed_body) {
      std::fprintf(stderr, "postern-bench: --dkim-key: %s\n", signed_body.status().message().c_str());
      return 2;
    }
    sh.body = std::move(signed_body.value());
  }
  sh.end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.duration_max * 1000));
  tls::SslCtxPtr ctx;
  if (o.mode != Mode::kPlain) {
    auto c = tls::makeClientContext("", false);
    if (!c) {
      std::fprintf(stderr, "postern-bench: %s\n", c.status().message().c_str());
      return 2;
    }
    ctx = *c;
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);   // a full handshake each time, as a new client
    sh.tls = ctx.get();
  }

  unsigned threads = std::min(o.threads, o.idle ? o.idle : o.sessions);
  std::vector<Tally> tallies(threads);
  std::vector<std::unique_ptr<asio::io_context>> ioc;
  std::vector<std::unique_ptr<asio::steady_timer>> holds;
  unsigned total = o.idle ? o.idle : o.sessions;
  for (unsigned t = 0; t < threads; ++t) {
    ioc.push_back(std::make_unique<asio::io_context>(1));
    holds.push_back(std::make_unique<asio::steady_timer>(*ioc.back(), Clock::time_point::max()));
  }
  for (unsigned i = 0; i < total; ++i) {
    unsigned t = i % threads;
    if (o.idle) asio::co_spawn(*ioc[t], idleSession(sh, tallies[t], i, *holds[t]), asio::detached);
    else asio::co_spawn(*ioc[t], session(sh, tallies[t], i), asio::detached);
  }
  // Idle mode: once every connection is up, every thread's hold timer is armed.
  std::atomic<bool> done{false};
  std::thread idle_arm;
  if (o.idle) {
    idle_arm = std::thread([&] {
      while (!done && sh.idle_ready.load() < o.idle && Clock::now() < sh.end)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (sh.idle_ready.load() < o.idle) {
        std::printf("IDLE-READY %llu\n", static_cast<unsigned long long>(sh.idle_ready.load()));
        std::fflush(stdout);
      }
      auto until = std::min(Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.hold * 1000)), sh.end);
      for (unsigned t = 0; t < threads; ++t)
        asio::post(*ioc[t], [&, t, until] { holds[t]->expires_at(until); });
    });
  }
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) workers.emplace_back([&, t] { ioc[t]->run(); });
  for (auto& w : workers) w.join();
  done = true;
  if (idle_arm.joinable()) idle_arm.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Tally all;
  for (auto& t : tallies) {
    all.messages_ok += t.messages_ok;
    all.messages_failed += t.messages_failed;
    all.connections += t.connections;
    all.bytes += t.bytes;
    all.idle_ready += t.idle_ready;
    all.latency_ms.insert(all.latency_ms.end(), t.latency_ms.begin(), t.latency_ms.end());
    for (auto& [k, v] : t.errors) all.errors[k] += v;
  }
  double p50 = percentile(all.latency_ms, 0.50), p99 = percentile(all.latency_ms, 0.99);
  double pmax = all.latency_ms.empty() ? 0 : *std::max_element(all.latency_ms.begin(), all.latency_ms.end());
  double mps = elapsed > 0 ? static_cast<double>(all.messages_ok) / elapsed : 0;
  double cps = elapsed > 0 ? static_cast<double>(all.connections) / elapsed : 0;
  bool timed_out = Clock::now() >= sh.end;
  std::string errs;
  for (auto& [k, v] : all.errors) errs += fmt::format("{}\"{}\":{}", errs.empty() ? "" : ",", jsonEscape(k), v);

  if (!o.quiet) {
    std::printf("target      %s:%u mode=%s proxy=%s sessions=%u size=%zu rcpts=%u per-conn=%u threads=%u\n",
                o.host.c_str(), o.port, modeName(o.mode), o.proxy ? (o.proxy == 1 ? "v1" : "v2") : "none", o.sessions,
                sh.body.size(), o.rcpts, o.per_conn, threads);
    if (o.idle) {
      std::printf("idle        %llu of %u connections held\n", static_cast<unsigned long long>(all.idle_ready), o.idle);
    } else {
      std::printf("messages    %llu ok, %llu failed in %.3f s%s\n", static_cast<unsigned long long>(all.messages_ok),
                  static_cast<unsigned long long>(all.messages_failed), elapsed, timed_out ? " (stopped by --duration-max)" : "");
      std::printf("rate        %.1f messages/s, %.1f connections/s, %.1f MB/s\n", mps, cps,
                  static_cast<double>(all.bytes) / elapsed / 1e6);
      std::printf("latency     end of DATA -> 250: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, pmax);
    }
    for (auto& [k, v] : all.errors) std::printf("error       %-40s %llu\n", k.c_str(), static_cast<unsigned long long>(v));
  }
  std::printf(
      "{\"tool\":\"postern-bench\",\"mode\":\"%s\",\"proxy\":%d,\"sessions\":%u,\"size\":%zu,\"rcpts\":%u,\"per_conn\":%u,"
      "\"messages_ok\":%llu,\"messages_failed\":%llu,\"connections\":%llu,\"idle_ready\":%llu,\"elapsed_s\":%.4f,"
      "\"msgs_per_s\":%.2f,\"conns_per_s\":%.2f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"timed_out\":%s,"
      "\"errors\":{%s}}\n",
      modeName(o.mode), o.proxy, o.sessions, sh.body.size(), o.rcpts, o.per_conn,
      static_cast<unsigned long long>(all.messages_ok), static_cast<unsigned long long>(all.messages_failed),
      static_cast<unsigned long long>(all.connections), static_cast<unsigned long long>(all.idle_ready), elapsed, mps, cps,
      p50, p99, pmax, timed_out ? "true" : "false", errs.c_str());
  std::fflush(stdout);
  bool ok = o.idle ? all.idle_ready == o.idle : all.messages_failed == 0 && all.messages_ok == o.messages;
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace postern::bench

int main(int argc, char** argv) {
  auto o = postern::bench::parseArgs(argc, argv);
  if (!o) {
    postern::bench::usage();
    return 2;
  }
  return postern::bench::run(*o);
}
