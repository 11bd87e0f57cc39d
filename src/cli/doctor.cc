// `postern doctor`: for each listener, in configuration order, a client's view of it. SMTP as
// in RFC 5321 (greeting §4.3.1, EHLO §4.1.1.1), STARTTLS as in RFC 3207, implicit TLS as in
// RFC 8314 §3.3, the PROXY v2 header as in haproxy doc/proxy-protocol.txt section 2.2.
//
// The point is the diagnosis, not the probing: when a connection dies, the listener's
// proxy_protocol mode, whether the check went through the load balancer, the step at which
// it died and how long that took together say which side is misconfigured (DESIGN.md, first
// section). Each failure names its fix; docs/doctor.md lists them all.
#include "cli/doctor.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/address.hpp>
#include <asio/this_coro.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <optional>
#include <span>
#include <vector>

#include "cli/commands.h"
#include "config/config.h"
#include "net/asio.h"
#include "net/stream.h"
#include "smtp/client/reply_parser.h"
#include "proxy/proxy_parser.h"
#include "tls/tls_context.h"
#include "util/strings.h"

namespace postern::cli {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using net::awaitable;
using net::tcp;

namespace {

constexpr auto kConnectTimeout = 5s;
// Every later step (greeting, each reply, the TLS handshake) gets at least this long; more
// when the server is known to wait longer on purpose (greeting_delay, header_timeout).
constexpr auto kStepTimeout = 5s;
// Beyond header_timeout, to see Postern close a connection that owed it a PROXY header.
constexpr auto kHeaderTimeoutMargin = 2s;
constexpr auto kWatchdogGrace = 1s;
// A whole multi-line reply (EHLO) is far below this; more means the peer is not SMTP.
// Unexpected bytes quoted in a diagnosis.
constexpr size_t kMaxQuotedBytes = 40;
// A connection that owed a header and was closed after this share of header_timeout was
// closed by the timeout (nothing arrived), not by something that did arrive.
constexpr double kHeaderTimeoutShare = 0.8;

// Section 2.2: the 12-byte v2 signature.
constexpr uint8_t kV2Signature[proxy::kV2SignatureLength] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                             0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr uint8_t kV2VersionProxy = 0x21;  // version 2, command PROXY
constexpr uint8_t kV2TcpOverIpv4 = 0x11;   // AF_INET, STREAM
constexpr uint8_t kV2TcpOverIpv6 = 0x21;   // AF_INET6, STREAM
constexpr uint16_t kV2Ipv4Block = 12;      // 2 x 4 address bytes + 2 x 2 port bytes
constexpr uint16_t kV2Ipv6Block = 36;      // 2 x 16 address bytes + 2 x 2 port bytes

}  // namespace

Result<ThroughSpec> parseThrough(std::string_view arg) {
  ThroughSpec t;
  std::string_view rest = arg;
  if (auto eq = arg.find('='); eq != std::string_view::npos) {
    t.listener = std::string(arg.substr(0, eq));
    rest = arg.substr(eq + 1);
    if (t.listener.empty()) return Status::invalid(fmt::format("--through '{}': the listener name is empty", arg));
  }
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      return Status::invalid(fmt::format("--through '{}': expected [IPV6]:PORT", arg));
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    if (!IpAddress::parseV6(host))
      return Status::invalid(fmt::format("--through '{}': '{}' is not an IPv6 address", arg, host));
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos)
      return Status::invalid(fmt::format("--through '{}': expected [LISTENER=]HOST:PORT", arg));
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return Status::invalid(fmt::format("--through '{}': write IPv6 addresses in brackets, e.g. [::1]:465", arg));
  }
  if (host.empty()) return Status::invalid(fmt::format("--through '{}': the host is empty", arg));
  auto p = parseDecimal(port, 65535);
  if (!p || *p == 0) return Status::invalid(fmt::format("--through '{}': '{}' is not a port number", arg, port));
  t.host = std::string(host);
  t.port = static_cast<uint16_t>(*p);
  t.host_port = std::string(rest);
  return t;
}

std::string encodeProxyV2(const Endpoint& src, const Endpoint& dst) {
  const bool v4 = src.address.isV4();
  const uint16_t block = v4 ? kV2Ipv4Block : kV2Ipv6Block;
  std::string out(reinterpret_cast<const char*>(kV2Signature), sizeof kV2Signature);
  out.push_back(static_cast<char>(kV2VersionProxy));
  out.push_back(static_cast<char>(v4 ? kV2TcpOverIpv4 : kV2TcpOverIpv6));
  out.push_back(static_cast<char>(block >> 8));
  out.push_back(static_cast<char>(block & 0xff));
  out.append(reinterpret_cast<const char*>(src.address.bytes()), src.address.size());
  out.append(reinterpret_cast<const char*>(dst.address.bytes()), dst.address.size());
  for (uint16_t port : {src.port, dst.port}) {
    out.push_back(static_cast<char>(port >> 8));
    out.push_back(static_cast<char>(port & 0xff));
  }
  assert(proxy::parse(proxy::asBytes(out)).status ==
         proxy::Status::kDone);
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------
// Results

struct Failure {
  std::string reason;
  std::string fix;
};

// How a connection ended when the peer went away instead of answering.
enum class Loss : uint8_t { kNone, kClosed, kTimeout };

// The step a probe was at; kDone when every step passed.
enum class Stage : uint8_t { kConnect, kHeader, kGreeting, kEhlo, kStartTls, kHandshake, kEhloAfterTls, kDone };

struct Target {
  std::string display;  // "127.0.0.1:465", or HOST:PORT of --through
  std::vector<tcp::endpoint> endpoints;
  bool through = false;
};

struct Probe {
  Stage stage = Stage::kConnect;
  std::error_code connect_error;
  Loss loss = Loss::kNone;   // set when the peer closed or went silent at `stage`
  Clock::duration waited{};  // from the connection (or the header) to the loss
  bool sent_header = false;
  bool reached_server = false;     // a greeting or a completed TLS handshake came back
  std::optional<Failure> failure;  // a failure already diagnosed (everything but a loss)
  // What an OK line shows.
  std::string tls_version, cipher;
  std::vector<std::string> names;
  long days_left = 0;
};

std::string portOf(const config::Listener& l) {
  return std::to_string(l.address.port);
}

// ---------------------------------------------------------------------------------------
// Certificate checks

struct VerifyError {
  int code;
  int depth;
};
using VerifyErrors = std::vector<VerifyError>;

// Verification callback: records every error and lets the handshake finish, so that doctor
// can report the precise problem (and the protocol and cipher) instead of "verify failed".
// The collector is the SSL_CTX's app data, set around each handshake (one at a time).
int collectVerifyError(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl) {
    if (auto* errors = static_cast<VerifyErrors*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))))
      errors->push_back({X509_STORE_CTX_get_error(store), X509_STORE_CTX_get_error_depth(store)});
  }
  return 1;
}

std::vector<std::string> certificateNames(X509* x) {
  std::vector<std::string> names;
  if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                         ASN1_STRING_length(gn->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)), ASN1_STRING_length(cn));
    }
  }
  return names;
}

std::string dateOf(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "an unreadable date";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

bool isTimeError(int code) {
  return code == X509_V_ERR_CERT_HAS_EXPIRED || code == X509_V_ERR_CERT_NOT_YET_VALID;
}

bool isUntrustedError(int code) {
  return code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || code == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
         code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
         code == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE || code == X509_V_ERR_CERT_UNTRUSTED;
}

// The leaf's dates, the config hostname against its names, then the chain; the first
// problem found, or nothing (and `p` gets the names and days left).
std::optional<Failure> checkCertificate(SSL* ssl, const VerifyErrors& errors, const std::string& hostname,
                                        const std::string& ca_file, Probe& p) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return Failure{"the server sent no certificate", "set [tls] cert and key"};
  p.names = certificateNames(leaf);
  const std::string names = p.names.empty() ? std::string("no names") : fmt::format("{}", fmt::join(p.names, ", "));
  const char* renew =
      "renew it (certbot renew, acme.sh --renew) into the files named by [tls] cert and key; Postern picks the new "
      "files up without a restart";

  int days = 0, secs = 0;
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  if (ASN1_TIME_diff(&days, &secs, nullptr, not_after) != 1)
    return Failure{"the certificate's expiry date is unreadable", renew};
  if (days < 0 || secs < 0 || (days == 0 && secs == 0))
    return Failure{fmt::format("the certificate ({}) expired on {}, {} days ago", names, dateOf(not_after), -days),
                   renew};
  p.days_left = days;
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
    return Failure{fmt::format("the certificate ({}) is not valid before {}", names, dateOf(X509_get0_notBefore(leaf))),
                   "check this host's clock, or use a certificate that is already valid"};

  if (X509_check_host(leaf, hostname.data(), hostname.size(), 0, nullptr) != 1)
    return Failure{fmt::format("the certificate's names ({}) do not include hostname '{}'", names, hostname),
                   fmt::format("use a certificate for {} in [tls] (or a [[tls.certificate]] for it), or set hostname "
                               "to one of the certificate's names",
                               hostname)};

  for (const VerifyError& e : errors) {
    if (e.code == X509_V_ERR_HOSTNAME_MISMATCH || (e.depth == 0 && isTimeError(e.code))) continue;
    const char* what = X509_verify_cert_error_string(e.code);
    if (!isUntrustedError(e.code))
      return Failure{fmt::format("the certificate chain does not verify ({} at depth {})", what, e.depth),
                     "replace the chain in [tls] cert with a valid one (leaf first, then its intermediates)"};
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
    const bool leaf_only = chain == nullptr || sk_X509_num(chain) <= 1;
    std::string fix;
    if (!ca_file.empty())
      fix = fmt::format("the chain does not lead to the CA in --ca {}: pass the CA that issued this certificate",
                        ca_file);
    else if (e.code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
      fix =
          "it is self-signed: pass it (or your CA) with --ca FILE and install it on every client, or use a "
          "certificate from a public CA such as Let's Encrypt";
    else if (leaf_only)
      fix =
          "serve the full chain (fullchain.pem, not cert.pem) in [tls] cert; for a private CA pass --ca FILE and "
          "install the CA on every client";
    else
      fix =
          "for a private CA pass --ca FILE and install the CA on every client; otherwise use a certificate from a "
          "public CA";
    return Failure{fmt::format("the certificate chain is not trusted ({})", what), fix};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// The SMTP client side

// Bytes that are not SMTP, described for a diagnosis.
std::string describeBytes(std::string_view b) {
  if (!b.empty() && (b[0] == 0x16 || b[0] == 0x15)) return "TLS records";
  std::string q;
  for (char ch : b.substr(0, kMaxQuotedBytes)) q.push_back(std::isprint(static_cast<unsigned char>(ch)) ? ch : '.');
  return fmt::format("'{}'", q);
}

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // text after "250-" / "250 "
  Loss loss = Loss::kNone;
  std::string garbage;  // set when what arrived is not an SMTP reply
  std::string text() const { return lines.empty() ? std::to_string(code) : fmt::format("{} {}", code, lines[0]); }
  bool ok() const { return loss == Loss::kNone && garbage.empty(); }
};

// Reads replies (RFC 5321 §4.2) and sends commands on a stream with a deadline per step.
class Conversation {
 public:
  Conversation(net::Stream& s, Clock::duration step) : s_(s), step_(step) {}

  // Replies are parsed by the SMTP client's parser (smtp/client/reply_parser.h), the one
  // outbound delivery uses; the doctor only adds the description of what arrived instead.
  awaitable<Reply> read() {
    Reply r;
    s_.setDeadline(step_);
    for (;;) {
      if (!in_.empty()) {
        smtp::client::ReplyParser::Step st = parser_.feed(in_);
        raw_.append(in_, 0, st.consumed);
        in_.erase(0, st.consumed);
        if (st.state == smtp::client::ReplyParser::State::kDone) {
          r.code = st.reply.code;
          r.lines = std::move(st.reply.lines);
          raw_.clear();
          co_return r;
        }
        if (st.state == smtp::client::ReplyParser::State::kError) {
          // The line that broke the reply (the last one taken), as it arrived.
          std::string_view bad(raw_);
          if (bad.size() > 1 && bad.back() == '\n') bad.remove_suffix(1);
          size_t start = bad.rfind('\n');
          bad = start == std::string_view::npos ? bad : bad.substr(start + 1);
          if (!bad.empty() && bad.back() == '\r') bad.remove_suffix(1);
          r.garbage = bad.size() + 2 > smtp::client::kMaxClientReplyLine ? std::string("a reply line longer than 4 KiB")
                                                                          : describeBytes(bad);
          co_return r;
        }
        // A TLS record or other binary never ends a line: name it as soon as it starts.
        if (!std::isdigit(static_cast<unsigned char>(raw_[0]))) {
          r.garbage = describeBytes(raw_);
          co_return r;
        }
      }
      char buf[4096];
      auto [ec, n] = co_await s_.readSome(buf, sizeof buf);
      if (ec) {
        r.loss = s_.expired() || ec == asio::error::timed_out ? Loss::kTimeout : Loss::kClosed;
        co_return r;
      }
      in_.append(buf, n);
    }
  }

  awaitable<Reply> command(const std::string& line) {
    s_.setDeadline(step_);
    std::error_code ec = co_await s_.writeAll(line);
    if (ec) {
      Reply r;
      r.loss = s_.expired() ? Loss::kTimeout : Loss::kClosed;
      co_return r;
    }
    Reply r = co_await read();
    co_return r;
  }

  // After the 220 to STARTTLS: nothing sent in plaintext may be taken into TLS (RFC 3207 §4.2).
  void discardBuffered() {
    in_.clear();
    raw_.clear();
    parser_ = smtp::client::ReplyParser();
  }

 private:
  net::Stream& s_;
  Clock::duration step_;
  std::string in_;    // read, not yet given to the parser
  std::string raw_;   // the bytes of the reply being read, for describing garbage
  smtp::client::ReplyParser parser_;
};

// EHLO keywords (RFC 5321 §4.1.1.1): the first word of every line after the first, upper case.
std::vector<std::string> ehloKeywords(const Reply& r) {
  std::vector<std::string> out;
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string_view l = r.lines[i];
    std::string word(l.substr(0, std::min(l.find(' '), l.find('='))));
    for (char& ch : word) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out.push_back(std::move(word));
  }
  return out;
}

bool has(const std::vector<std::string>& v, std::string_view word) {
  return std::find(v.begin(), v.end(), word) != v.end();
}

Endpoint toEndpoint(const tcp::endpoint& ep) {
  Endpoint e;
  if (ep.address().is_v4()) {
    auto b = ep.address().to_v4().to_bytes();
    e.address = IpAddress::v4(b.data());
  } else {
    auto b = ep.address().to_v6().to_bytes();
    e.address = IpAddress::v6(b.data());
  }
  e.port = ep.port();
  return e;
}

tcp::endpoint toAsio(const Endpoint& e) {
  if (e.address.isV4()) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(e.address.bytes(), 4, b.begin());
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy_n(e.address.bytes(), 16, b.begin());
  return {asio::ip::address_v6(b), e.port};
}

// The address a local client uses for a listener: its own, or loopback for a wildcard.
Target directTarget(const config::Listener& l) {
  Endpoint e = l.address;
  if (std::all_of(e.address.bytes(), e.address.bytes() + e.address.size(), [](uint8_t b) { return b == 0; })) {
    uint8_t loop4[4] = {127, 0, 0, 1};
    uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    e.address = e.address.isV4() ? IpAddress::v4(loop4) : IpAddress::v6(loop6);
  }
  return Target{e.toString(), {toAsio(e)}, false};
}

// An EHLO argument for this side of the connection (RFC 5321 §4.1.3 address literal).
std::string ehloLine(const Endpoint& local) {
  IpAddress a = local.address.unmapped();
  return a.isV4() ? fmt::format("EHLO [{}]\r\n", a.toString()) : fmt::format("EHLO [IPv6:{}]\r\n", a.toString());
}

awaitable<std::error_code> connectWithin(tcp::socket& sock, const tcp::endpoint& ep) {
  asio::steady_timer timer(sock.get_executor());
  timer.expires_after(kConnectTimeout);
  auto r = co_await (sock.async_connect(ep, net::use_nothrow) || timer.async_wait(net::use_nothrow));
  if (r.index() == 1) co_return std::error_code(asio::error::timed_out);
  co_return std::get<0>(std::get<0>(r));
}

// Connects to the first of `endpoints` that answers (a name may resolve to several).
awaitable<std::error_code> connectAny(tcp::socket& sock, const std::vector<tcp::endpoint>& endpoints) {
  std::error_code ec = asio::error::host_not_found;
  for (const tcp::endpoint& ep : endpoints) {
    std::error_code ignored;
    sock.close(ignored);
    ec = co_await connectWithin(sock, ep);
    if (!ec) break;
  }
  co_return ec;
}

// Reads until the peer closes: `closed_late` is whether that took at least `late`; left empty
// when data arrives or the deadline passes first.
awaitable<void> waitForClose(net::Stream& s, Clock::duration late, std::optional<bool>& closed_late) {
  const Clock::time_point start = Clock::now();
  char buf[512];
  auto [ec, n] = co_await s.readSome(buf, sizeof buf);
  if (ec && !s.expired() && ec != asio::error::timed_out) closed_late = Clock::now() - start >= late;
  s.stopWatchdog();
}

// ---------------------------------------------------------------------------------------
// The doctor

struct Outcome {
  enum class Kind { kOk, kFail, kSkip } kind;
  std::string line;
};

class Doctor {
 public:
  Doctor(const config::Config& cfg, SSL_CTX* tls, std::string ca_file)
      : cfg_(cfg), tls_(tls), ca_file_(std::move(ca_file)) {}

  awaitable<Outcome> check(const config::Listener& l, const ThroughSpec* through);

 private:
  Clock::duration stepTimeout(const config::Listener& l, const Target& t) const;
  awaitable<Probe> probe(const config::Listener& l, const Target& t);
  awaitable<void> converse(net::Stream& s, const config::Listener& l, const Target& t, const Endpoint& local,
                           const std::string& header, Probe& p);
  awaitable<bool> handshake(net::Stream& s, const config::Listener& l, Probe& p);
  awaitable<Failure> diagnoseLoss(const config::Listener& l, const Target& t, const Probe& p);
  // Whether a listener that owes a header closed the balancer's connection at header_timeout
  // (nothing arrived) or at once (what arrived was refused); nullopt when that cannot be told.
  awaitable<std::optional<bool>> closedAtHeaderTimeout(const config::Listener& l, const Target& t, const Probe& p);
  Failure lossThroughBalancer(const config::Listener& l, std::optional<bool> silent) const;
  Failure lossDirect(const config::Listener& l, const Target& t, const Probe& p) const;
  Failure connectFailure(const config::Listener& l, const Target& t, std::error_code ec) const;

  const config::Config& cfg_;
  SSL_CTX* tls_;
  std::string ca_file_;
};

Clock::duration Doctor::stepTimeout(const config::Listener& l, const Target& t) const {
  Clock::duration step = kStepTimeout;
  if (l.service->service == config::Service::kSmtp) step += std::chrono::milliseconds(cfg_.smtp.greeting_delay_ms);
  // Through a balancer that may not send the header Postern waits for, wait long enough to
  // see Postern give up, so that the diagnosis can tell "nothing arrived" from "refused".
  if (t.through && l.proxy != config::ProxyMode::kOff)
    step =
        std::max<Clock::duration>(step, std::chrono::milliseconds(cfg_.proxy.header_timeout_ms) + kHeaderTimeoutMargin);
  return step;
}

awaitable<Probe> Doctor::probe(const config::Listener& l, const Target& t) {
  Probe p;
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  std::error_code ec = co_await connectAny(sock, t.endpoints);
  if (ec) {
    p.connect_error = ec;
    p.failure = connectFailure(l, t, ec);
    co_return p;
  }
  std::error_code ignored;
  Endpoint local = toEndpoint(sock.local_endpoint(ignored));
  Endpoint remote = toEndpoint(sock.remote_endpoint(ignored));

  // Directly, send the header the listener expects from this source; through a load
  // balancer never (adding headers is the balancer's job, and what is being checked).
  std::string header;
  if (!t.through && l.proxy != config::ProxyMode::kOff) {
    const bool trusted = anyContains(l.trusted_networks, local.address.unmapped());
    if (l.proxy == config::ProxyMode::kRequired && !trusted) {
      p.stage = Stage::kHeader;
      p.failure = Failure{
          fmt::format("listener '{}' (port {}) has proxy_protocol = \"required\" and this host's address {} is not in "
                      "its trusted_networks, so doctor cannot reach it directly",
                      l.name, portOf(l), local.address.unmapped().toString()),
          fmt::format("check it through the load balancer with --through {}=HOST:PORT, or run doctor on a host in "
                      "trusted_networks",
                      l.name)};
      co_return p;
    }
    if (trusted) header = encodeProxyV2(local, remote);
  }

  net::Stream stream(std::move(sock));
  stream.setDeadline(stepTimeout(l, t));
  co_await (converse(stream, l, t, local, header, p) || stream.runWatchdog(kWatchdogGrace));
  stream.close();
  co_return p;
}

awaitable<bool> Doctor::handshake(net::Stream& s, const config::Listener& l, Probe& p) {
  p.stage = Stage::kHandshake;
  VerifyErrors errors;
  SSL_CTX_set_app_data(tls_, &errors);
  std::string reason;
  const Clock::time_point start = Clock::now();
  const bool up = co_await s.connectTls(tls_, cfg_.hostname, reason);
  SSL_CTX_set_app_data(tls_, nullptr);
  ERR_clear_error();
  if (!up) {
    p.waited = Clock::now() - start;
    std::string r = toLower(reason);
    if (r.find("timed out") != std::string::npos) {
      p.loss = Loss::kTimeout;
    } else if (r.find("unexpected eof") != std::string::npos || r.find("closed the connection") != std::string::npos ||
               r.find("reset") != std::string::npos || r.find("end of file") != std::string::npos ||
               r.find("broken pipe") != std::string::npos) {
      p.loss = Loss::kClosed;
    } else if (r.find("wrong version number") != std::string::npos ||
               r.find("packet length too long") != std::string::npos) {
      p.failure = Failure{
          fmt::format("the server answered in plain text, not TLS ({})", reason),
          l.service->implicit_tls
              ? fmt::format(
                    "this address leads to a plaintext port: point it at listener '{}' (port {}, implicit TLS), "
                    "or use service = \"submission\" for a STARTTLS port",
                    l.name, portOf(l))
              : std::string("check that nothing between doctor and Postern intercepts STARTTLS")};
    } else {
      p.failure = Failure{fmt::format("the TLS handshake failed: {}", reason.empty() ? "no reason given" : reason),
                          "see Postern's log (event=tls.handshake_failed) and compare [tls] min_version and ciphers "
                          "with what clients support"};
    }
    co_return false;
  }
  p.reached_server = true;
  p.tls_version = s.tlsInfo().version;
  p.cipher = s.tlsInfo().cipher;
  p.failure = checkCertificate(s.ssl(), errors, cfg_.hostname, ca_file_, p);
  co_return !p.failure;
}

awaitable<void> Doctor::converse(net::Stream& s, const config::Listener& l, const Target& t, const Endpoint& local,
                                 const std::string& header, Probe& p) {
  struct StopWatchdog {
    net::Stream& s;
    ~StopWatchdog() { s.stopWatchdog(); }
  } stop{s};
  Conversation c(s, stepTimeout(l, t));
  Clock::time_point start = Clock::now();
  auto lost = [&](Stage stage, Loss loss) {
    p.stage = stage;
    p.loss = loss;
    p.waited = Clock::now() - start;
  };
  auto refused = [&](Stage stage, std::string_view what, const Reply& r) {
    p.stage = stage;
    if (!r.garbage.empty())
      p.failure = Failure{fmt::format("the server does not speak SMTP: {} arrived", r.garbage),
                          fmt::format("check that {} leads to Postern's listener '{}'", t.display, l.name)};
    else
      p.failure = Failure{fmt::format("{} \"{}\"", what, r.text()),
                          "see Postern's log for this connection (a ban shows in `postern ban list`)"};
  };

  // One command (or, with an empty line, the greeting) that must be answered `want`;
  // nullopt when it was not (the failure is recorded).
  auto step = [&](Stage stage, const std::string& line, int want,
                  std::string_view what) -> net::awaitable<std::optional<Reply>> {
    p.stage = stage;
    Reply r;
    if (line.empty()) r = co_await c.read();
    else r = co_await c.command(line);
    if (r.loss != Loss::kNone) {
      lost(stage, r.loss);
      co_return std::nullopt;
    }
    if (!r.ok() || r.code != want) {
      refused(stage, what, r);
      co_return std::nullopt;
    }
    co_return r;
  };

  if (!header.empty()) {
    p.stage = Stage::kHeader;
    std::error_code ec = co_await s.writeAll(header);
    if (ec) {
      lost(Stage::kHeader, Loss::kClosed);
      co_return;
    }
    p.sent_header = true;
    start = Clock::now();
  }
  const bool implicit = l.service->implicit_tls;
  if (implicit) {
    const bool up = co_await handshake(s, l, p);
    if (!up) co_return;
  }

  const std::string no_command;
  if (!co_await step(Stage::kGreeting, no_command, 220, "the server greeted with")) co_return;
  p.reached_server = true;

  const std::string ehlo = ehloLine(local);
  std::optional<Reply> ehlo_reply = co_await step(Stage::kEhlo, ehlo, 250, "EHLO was answered with");
  if (!ehlo_reply) co_return;
  Reply first = std::move(*ehlo_reply);

  if (!implicit) {
    const std::vector<std::string> keywords = ehloKeywords(first);
    if (has(keywords, "AUTH")) {
      p.failure = Failure{"AUTH is offered before TLS: passwords could cross the network unencrypted",
                          fmt::format("Postern offers AUTH only after STARTTLS; check that {} leads to Postern's "
                                      "listener '{}' and not to another server",
                                      t.display, l.name)};
      co_return;
    }
    if (!has(keywords, "STARTTLS")) {
      p.failure = Failure{"STARTTLS is not offered",
                          cfg_.tls.configured ? fmt::format("something between doctor and Postern removes it (some "
                                                            "firewalls' SMTP inspection does), or {} is not Postern",
                                                            t.display)
                                              : std::string("configure [tls] cert and key")};
      co_return;
    }
    const std::string starttls = "STARTTLS\r\n";
    if (!co_await step(Stage::kStartTls, starttls, 220, "STARTTLS was answered with")) co_return;
    c.discardBuffered();
    const bool up = co_await handshake(s, l, p);
    if (!up) co_return;

    std::optional<Reply> again = co_await step(Stage::kEhloAfterTls, ehlo, 250, "EHLO after STARTTLS was answered with");
    if (!again) co_return;
    first = std::move(*again);
  }
  if (l.service->auth_required && !has(ehloKeywords(first), "AUTH")) {
    p.failure = Failure{
        "AUTH is not offered after TLS, so clients cannot log in",
        fmt::format("check that {} leads to Postern's listener '{}' and not to another server", t.display, l.name)};
    co_return;
  }
  const std::string quit = "QUIT\r\n";
  co_await c.command(quit);
  p.stage = Stage::kDone;
}

Failure Doctor::connectFailure(const config::Listener& l, const Target& t, std::error_code ec) const {
  if (t.through) {
    if (ec == asio::error::connection_refused)
      return {"connection refused by the load balancer",
              fmt::format("check that the load balancer runs and has a frontend on {}", t.display)};
    if (ec == asio::error::timed_out)
      return {fmt::format("no answer within {}s", std::chrono::seconds(kConnectTimeout).count()),
              fmt::format("check the address and that no firewall drops connections to {}", t.display)};
    return {fmt::format("cannot connect: {}", ec.message()), "check the address given to --through"};
  }
  if (ec == asio::error::connection_refused)
    return {"connection refused",
            fmt::format("is postern running? Start it (postern serve) and check that listener '{}' has address {}",
                        l.name, l.address.toString())};
  if (ec == asio::error::timed_out)
    return {fmt::format("no answer within {}s", std::chrono::seconds(kConnectTimeout).count()),
            "check that no firewall drops connections to this port"};
  return {fmt::format("cannot connect: {}", ec.message()), "check the listener's address"};
}

// A connection that died early on a listener reached through the load balancer: the
// listener's mode says which side disagrees; `silent` (did Postern wait for header_timeout
// before closing: the balancer sent nothing) says how, when known.
Failure Doctor::lossThroughBalancer(const config::Listener& l, std::optional<bool> silent) const {
  const std::string send_them =
      "make it send them (HAProxy: send-proxy-v2 on the server line, NGINX: proxy_protocol on in the stream "
      "server block, Traefik: proxyProtocol version 2)";
  switch (l.proxy) {
    case config::ProxyMode::kOff:
      return {fmt::format("the load balancer sends PROXY headers but listener '{}' (port {}) has proxy_protocol = "
                          "\"off\"",
                          l.name, portOf(l)),
              "set proxy_protocol = \"required\" on it or stop sending PROXY headers"};
    case config::ProxyMode::kRequired:
      if (silent == false)
        return {fmt::format("listener '{}' (port {}) refuses the load balancer's PROXY headers: its address is not in "
                            "trusted_networks",
                            l.name, portOf(l)),
                fmt::format("add the load balancer's address (as Postern sees it) to trusted_networks of listener "
                            "'{}'",
                            l.name)};
      return {fmt::format("the load balancer is not sending PROXY headers but listener '{}' (port {}) has "
                          "proxy_protocol = \"required\"",
                          l.name, portOf(l)),
              send_them + ", or set proxy_protocol = \"off\" on the listener" +
                  (silent ? "" : "; if it does send them, add its address to trusted_networks")};
    case config::ProxyMode::kMixed:
      if (silent == true)
        return {fmt::format("the load balancer's address is in trusted_networks of listener '{}' (port {}, "
                            "proxy_protocol = \"mixed\") but it is not sending PROXY headers",
                            l.name, portOf(l)),
                send_them + ", or take its address out of trusted_networks"};
      if (silent == false)
        return {fmt::format("the load balancer sends PROXY headers but its address is not in trusted_networks of "
                            "listener '{}' (port {}, proxy_protocol = \"mixed\")",
                            l.name, portOf(l)),
                "add the load balancer's address to trusted_networks"};
      return {fmt::format("the load balancer and listener '{}' (port {}, proxy_protocol = \"mixed\") disagree about "
                          "PROXY headers",
                          l.name, portOf(l)),
              "if the load balancer sends PROXY headers, add its address to trusted_networks; if its address is "
              "already there, " +
                  send_them};
  }
  return {"the connection was closed", "see Postern's log"};
}

awaitable<std::optional<bool>> Doctor::closedAtHeaderTimeout(const config::Listener& l, const Target& t,
                                                             const Probe& p) {
  const auto header_timeout = std::chrono::milliseconds(cfg_.proxy.header_timeout_ms);
  const auto share = std::chrono::duration_cast<Clock::duration>(header_timeout * kHeaderTimeoutShare);
  if (l.proxy == config::ProxyMode::kOff) co_return std::nullopt;
  // Server-first SMTP: doctor itself sent nothing while it waited for the greeting.
  if (!l.service->implicit_tls) co_return p.loss == Loss::kTimeout || p.waited >= share;
  // Implicit TLS: the ClientHello was refused at once whatever the balancer did; ask again
  // and this time send nothing.
  auto ex = co_await asio::this_coro::executor;
  tcp::socket sock(ex);
  std::error_code ec = co_await connectAny(sock, t.endpoints);
  if (ec) co_return std::nullopt;
  net::Stream s(std::move(sock));
  s.setDeadline(header_timeout + kHeaderTimeoutMargin);
  std::optional<bool> result;
  co_await (waitForClose(s, share, result) || s.runWatchdog(kWatchdogGrace));
  s.close();
  co_return result;
}

Failure Doctor::lossDirect(const config::Listener& l, const Target& t, const Probe& p) const {
  const std::string step = p.stage == Stage::kHeader         ? "while doctor sent its PROXY header"
                           : p.stage == Stage::kHandshake    ? "during the TLS handshake"
                           : p.stage == Stage::kGreeting     ? "before the greeting"
                           : p.stage == Stage::kEhlo         ? "after EHLO"
                           : p.stage == Stage::kStartTls     ? "after STARTTLS"
                           : p.stage == Stage::kEhloAfterTls ? "after EHLO inside TLS"
                                                             : "";
  if (p.loss == Loss::kTimeout) {
    std::string reason = fmt::format("no answer {} within {}s", step,
                                     std::chrono::duration_cast<std::chrono::seconds>(stepTimeout(l, t)).count());
    if (p.stage == Stage::kGreeting || p.stage == Stage::kHandshake)
      return {reason, fmt::format("check that the running postern uses this configuration: a listener that waits for a "
                                  "PROXY header stays silent, and on {} it has proxy_protocol = \"{}\"",
                                  t.display, config::proxyModeName(l.proxy))};
    return {reason, "see Postern's log for this connection"};
  }
  std::string reason = fmt::format("the server closed the connection {}", step);
  if (p.sent_header) reason += " (doctor had sent a PROXY v2 header)";
  return {reason,
          "see Postern's log for this connection (events proxy.*, tls.handshake_failed, protect.*; a ban "
          "shows in `postern ban list`)"};
}

awaitable<Failure> Doctor::diagnoseLoss(const config::Listener& l, const Target& t, const Probe& p) {
  const bool early =
      l.service->implicit_tls ? p.stage == Stage::kHandshake : p.stage == Stage::kGreeting || p.stage == Stage::kEhlo;
  if (!t.through || !early) co_return lossDirect(l, t, p);
  // Before blaming the PROXY settings, make sure the listener itself answers.
  Target direct = directTarget(l);
  if (direct.endpoints == t.endpoints) {
    std::optional<bool> silent = co_await closedAtHeaderTimeout(l, t, p);
    co_return lossThroughBalancer(l, silent);
  }
  Probe d = co_await probe(l, direct);
  if (d.connect_error == asio::error::connection_refused)
    co_return Failure{fmt::format("the load balancer closed the connection, and nothing accepts connections on {} "
                                  "either",
                                  direct.display),
                      "is postern running? Start it (postern serve), or run doctor on the host where it runs"};
  if (!d.reached_server && d.loss != Loss::kNone) {
    Failure f = lossDirect(l, direct, d);
    f.reason =
        fmt::format("the connection dies through the load balancer and directly on {}: {}", direct.display, f.reason);
    co_return f;
  }
  std::optional<bool> silent = co_await closedAtHeaderTimeout(l, t, p);
  co_return lossThroughBalancer(l, silent);
}

awaitable<Outcome> Doctor::check(const config::Listener& l, const ThroughSpec* through) {
  const auto& svc = *l.service;
  Target t;
  if (through) {
    t.through = true;
    t.display = through->host_port;
    if (auto ip = IpAddress::parse(through->host)) {
      t.endpoints.push_back(toAsio(Endpoint{*ip, through->port}));
    } else {
      auto ex = co_await asio::this_coro::executor;
      tcp::resolver resolver(ex);
      const std::string port = std::to_string(through->port);
      auto [ec, results] = co_await resolver.async_resolve(through->host, port, net::use_nothrow);
      if (ec || results.empty())
        co_return Outcome{
            Outcome::Kind::kFail,
            fmt::format("FAIL {} {}: cannot resolve '{}': {}; fix: check the host name given to --through", l.name,
                        t.display, through->host, ec ? ec.message() : "no addresses")};
      for (const auto& r : results) t.endpoints.push_back(r.endpoint());
    }
  } else {
    t = directTarget(l);
  }
  if (svc.service != config::Service::kSmtp && svc.service != config::Service::kSubmission &&
      svc.service != config::Service::kSubmissions)
    co_return Outcome{Outcome::Kind::kSkip,
                      fmt::format("SKIP {} {}: doctor does not check {} listeners yet", l.name, t.display, svc.name)};

  Probe p = co_await probe(l, t);
  if (p.stage == Stage::kDone) {
    std::string line = fmt::format("OK   {} {} {} {} cert={} expires_in={}d", l.name, t.display, p.tls_version,
                                   p.cipher, fmt::join(p.names, ","), p.days_left);
    if (p.days_left <= tls::kExpirySoonDays)
      line += fmt::format(" warning: the certificate expires in {} days, renew it now", p.days_left);
    co_return Outcome{Outcome::Kind::kOk, line};
  }
  Failure f;
  if (p.failure) {
    f = *p.failure;
  } else {
    f = co_await diagnoseLoss(l, t, p);
  }
  co_return Outcome{Outcome::Kind::kFail, fmt::format("FAIL {} {}: {}; fix: {}", l.name, t.display, f.reason, f.fix)};
}

// Which --through applies to which listener (by index); an error for any ambiguity.
Result<std::vector<const ThroughSpec*>> assignThrough(const config::Config& cfg,
                                                      const std::vector<ThroughSpec>& specs) {
  std::vector<const ThroughSpec*> out(cfg.listeners.size(), nullptr);
  std::vector<std::string> names;
  for (const auto& l : cfg.listeners) names.push_back(l.name);
  for (const ThroughSpec& s : specs) {
    std::vector<size_t> match;
    if (s.listener.empty()) {
      if (cfg.listeners.size() != 1)
        return Status::invalid(
            fmt::format("--through {} does not say which listener it is for, and the configuration "
                        "has {} ({}): write --through LISTENER={}",
                        s.host_port, cfg.listeners.size(), fmt::join(names, ", "), s.host_port));
      match.push_back(0);
    } else {
      // A listener is named by its service (old names such as "smtps" work too) or by its address.
      config::ServiceLookup lookup = config::lookupService(s.listener);
      for (size_t i = 0; i < cfg.listeners.size(); ++i) {
        const auto& l = cfg.listeners[i];
        if (l.name == s.listener || (lookup.info && l.name == lookup.info->name) || l.address.toString() == s.listener)
          match.push_back(i);
      }
      if (match.empty())
        return Status::invalid(fmt::format("--through {}={}: there is no listener '{}' (listeners: {})", s.listener,
                                           s.host_port, s.listener, fmt::join(names, ", ")));
      if (match.size() > 1)
        return Status::invalid(
            fmt::format("--through {}={}: {} listeners are '{}'; name one by its address instead, "
                        "e.g. --through {}={}",
                        s.listener, s.host_port, match.size(), s.listener, cfg.listeners[match[0]].address.toString(),
                        s.host_port));
    }
    if (out[match[0]])
      return Status::invalid(fmt::format("listener '{}' has two --through addresses ({} and {})",
                                         cfg.listeners[match[0]].name, out[match[0]]->host_port, s.host_port));
    out[match[0]] = &s;
  }
  return out;
}

awaitable<void> checkAll(Doctor& doctor, const config::Config& cfg, const std::vector<const ThroughSpec*>& through,
                         bool& any_failed) {
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    Outcome o = co_await doctor.check(cfg.listeners[i], through[i]);
    if (o.kind == Outcome::Kind::kFail) any_failed = true;
    std::printf("%s\n", o.line.c_str());
    std::fflush(stdout);
  }
}

int runChecks(const Args& a) {
  config::LoadResult r = config::load(a.config_path);
  for (const auto& d : r.diagnostics)
    if (d.severity != config::Diagnostic::Severity::kNote) std::fprintf(stderr, "%s\n", d.toString().c_str());
  if (!r.config) {
    std::fprintf(stderr, "postern: %s: the configuration has errors\n", a.config_path.c_str());
    return 1;
  }
  const config::Config& cfg = *r.config;
  if (cfg.listeners.empty()) {
    std::fprintf(stderr, "postern: %s has no listeners to check\n", a.config_path.c_str());
    return 1;
  }
  std::vector<ThroughSpec> specs;
  for (const std::string& arg : a.through) {
    auto s = parseThrough(arg);
    if (!s) {
      std::fprintf(stderr, "postern: %s\n", s.status().message().c_str());
      return 2;
    }
    specs.push_back(std::move(*s));
  }
  auto through = assignThrough(cfg, specs);
  if (!through) {
    std::fprintf(stderr, "postern: %s\n", through.status().message().c_str());
    return 2;
  }
  auto ctx = tls::makeClientContext(a.ca_file, true);
  if (!ctx) {
    std::fprintf(stderr, "postern: %s\n", ctx.status().message().c_str());
    return 2;
  }
  SSL_CTX_set_verify(ctx->get(), SSL_VERIFY_PEER, &collectVerifyError);

  asio::io_context io;
  Doctor doctor(cfg, ctx->get(), a.ca_file);
  bool any_failed = false;
  std::exception_ptr error;
  asio::co_spawn(io, checkAll(doctor, cfg, *through, any_failed), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  return any_failed ? 1 : 0;
}

}  // namespace

int runDoctor(const Args& a) {
  // Nothing is expected to throw; this keeps a stack trace from ever reaching an operator.
  try {
    return runChecks(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "postern: doctor stopped: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "postern: doctor stopped on an unexpected error\n");
  }
  return 1;
}

}  // namespace postern::cli
