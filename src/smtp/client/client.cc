#include "smtp/client/client.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/this_coro.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "smtp/client/dane.h"
#include "util/base64.h"

namespace postern::smtp::client {

using namespace asio::experimental::awaitable_operators;
using net::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

// After a deadline passes, how long a stuck operation may take to notice before the
// watchdog closes the socket under it.
constexpr auto kWatchdogGrace = std::chrono::seconds(1);
// The body is written in blocks of this size, each with the data_block deadline.
constexpr size_t kBodyBlock = 64 * 1024;
// QUIT is a courtesy: never wait long for its reply.
constexpr auto kMaxQuitWait = std::chrono::seconds(5);

Reply synthesized(int code, std::string enhanced, std::string text) {
  Reply r;
  r.code = code;
  r.enhanced = enhanced;
  r.lines.push_back(enhanced.empty() ? text : enhanced + " " + text);
  return r;
}

bool hasLineBreak(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

const char* kindName(Failure::Kind k) {
  switch (k) {
    case Failure::kConnect: return "connect";
    case Failure::kGreeting: return "greeting";
    case Failure::kProtocol: return "protocol";
    case Failure::kTimeout: return "timeout";
    case Failure::kTls: return "tls";
    case Failure::kAuth: return "auth";
    case Failure::kRejected: return "rejected";
  }
  return "failure";
}

std::string endpointText(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

std::string Failure::text() const {
  std::string out = kindName(kind);
  if (!detail.empty()) out += ": " + detail;
  if (reply) out += (detail.empty() ? ": " : " (") + reply->text() + (detail.empty() ? "" : ")");
  return out;
}

SSL_CTX* makeClientContext(const std::string& ca_file, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = "SSL_CTX_new: " + net::lastTlsError();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // No session resumption across hosts: each connection starts from scratch.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    // No system store is not fatal: ca_file (or kMay/kEncrypt) may be all that is needed.
    ERR_clear_error();
  }
  if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    error = fmt::format("cannot load CA file {}: {}", ca_file, net::lastTlsError());
    SSL_CTX_free(ctx);
    return nullptr;
  }
  // The outcome is read with SSL_get_verify_result after the handshake, so that kMay and
  // kEncrypt proceed (and log) whatever it is; kVerify/kImplicit fail on it.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  // Host name checks (SSL_set1_host in net::Stream::connectTls) without partial wildcards.
  X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  // Shared DANE state (digest algorithms); a connection uses it only after SSL_dane_enable.
  if (SSL_CTX_dane_enable(ctx) <= 0) {
    error = "SSL_CTX_dane_enable: " + net::lastTlsError();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

std::string dotStuff(const std::string& body) {
  std::string out;
  out.reserve(body.size() + body.size() / 64 + 8);
  bool line_start = true;
  for (size_t i = 0; i < body.size(); ++i) {
    char ch = body[i];
    if (ch == '\r' || ch == '\n') {
      // CRLF, and any bare CR or LF, become one CRLF: no receiver may see a line end
      // (or an end of data) the sender did not mean (SMTP smuggling).
      if (ch == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (line_start && ch == '.') out.push_back('.');
    out.push_back(ch);
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

// ---------------------------------------------------------------------------------------

struct Connection::Impl {
  std::unique_ptr<net::Stream> stream;
  ClientOptions options;
  tcp::endpoint endpoint;
  ReplyParser parser;
  std::string pending;   // bytes read but not yet parsed
  bool broken = false;   // the session cannot carry another command

  // One reply, or why there was none. The stream is broken after a failure.
  struct Read {
    std::optional<Reply> reply;
    std::optional<Failure> failure;
  };

  Failure ioFailure(std::error_code ec, const char* what) {
    broken = true;
    if (stream->expired() || ec == asio::error::timed_out)
      return Failure{Failure::kTimeout, std::nullopt, fmt::format("timed out {}", what)};
    if (ec == asio::error::eof)
      return Failure{Failure::kProtocol, std::nullopt, fmt::format("the server closed the connection {}", what)};
    return Failure{Failure::kProtocol, std::nullopt, fmt::format("{} {}", ec.message(), what)};
  }

  // Every I/O runs beside the stream's watchdog, which cancels it once the deadline set
  // just before passes.
  awaitable<std::pair<std::error_code, size_t>> readSome(char* buf, size_t n) {
    auto r = co_await (stream->readSome(buf, n) || stream->runWatchdog(kWatchdogGrace));
    if (r.index() == 0) co_return std::get<0>(r);
    co_return std::pair{std::error_code(asio::error::timed_out), size_t{0}};
  }
  awaitable<std::error_code> writeAll(std::string_view data, Clock::duration timeout) {
    stream->setDeadline(timeout);
    auto r = co_await (stream->writeAll(data) || stream->runWatchdog(kWatchdogGrace));
    stream->setDeadlineAt(Clock::time_point::max());
    if (r.index() == 0) co_return std::get<0>(r);
    co_return std::error_code(asio::error::timed_out);
  }
  bool dane() const { return !options.dane_tlsa.empty(); }

  // RFC 7672 §3: the TLSA records become the only trust anchors of this handshake, with
  // SSL_VERIFY_PEER semantics (a mismatch aborts it). DANE-EE(3) skips name checks (§3.1.1);
  // OpenSSL skips validity dates for it by itself.
  bool prepareDane(SSL* ssl, std::string& reason) const {
    if (SSL_dane_enable(ssl, options.tls_name.c_str()) <= 0) {
      reason = "DANE: cannot enable: " + net::lastTlsError();
      return false;
    }
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    for (const std::string& n : options.dane_names) SSL_add1_host(ssl, n.c_str());
    int added = 0;
    for (const dns::TlsaData& t : options.dane_tlsa) {
      if (!usableForSmtp(t)) continue;
      // 0: a record OpenSSL cannot use (unsupported digest); < 0: an error.
      if (SSL_dane_tlsa_add(ssl, t.usage, t.selector, t.matching_type, t.data.data(), t.data.size()) > 0) ++added;
    }
    ERR_clear_error();
    if (added == 0) {
      reason = "DANE: no usable TLSA record";
      return false;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    return true;
  }

  awaitable<bool> connectTls(std::string& reason, Clock::duration timeout) {
    stream->setDeadline(timeout);
    net::Stream::TlsPrepare prepare;
    if (dane()) prepare = [this](SSL* ssl, std::string& why) { return prepareDane(ssl, why); };
    auto r = co_await (stream->connectTls(options.tls_ctx, options.tls_name, reason, std::move(prepare)) ||
                       stream->runWatchdog(kWatchdogGrace));
    stream->setDeadlineAt(Clock::time_point::max());
    bool ok = r.index() == 0 && std::get<0>(r);
    if (r.index() != 0) reason = "handshake timed out";
    // A DANE mismatch aborts the handshake (SSL_VERIFY_PEER): name it as such.
    if (!ok && dane() && stream->ssl()) {
      long v = SSL_get_verify_result(stream->ssl());
      if (v != X509_V_OK) reason = daneMismatch(v);
    }
    co_return ok;
  }

  static std::string daneMismatch(long v) {
    return fmt::format("DANE: certificate does not match the TLSA records ({})", X509_verify_cert_error_string(v));
  }
  // A handshake failure's text: a DANE mismatch says so by itself.
  static std::string handshakeFailed(const std::string& reason) {
    return reason.rfind("DANE: ", 0) == 0 ? reason : "TLS handshake failed: " + reason;
  }

  awaitable<Read> readReply(Clock::duration timeout, const char* what) {
    Read out;
    if (broken) {
      out.failure = Failure{Failure::kProtocol, std::nullopt, "the connection is not usable"};
      co_return out;
    }
    stream->setDeadline(timeout);
    char buf[8192];
    for (;;) {
      if (!pending.empty()) {
        ReplyParser::Step step = parser.feed(pending);
        pending.erase(0, step.consumed);
        if (step.state == ReplyParser::State::kDone) {
          if (step.reply.code == 421) broken = true;  // the server is closing (RFC 5321 §3.8)
          out.reply = std::move(step.reply);
          break;
        }
        if (step.state == ReplyParser::State::kError) {
          broken = true;
          out.failure = Failure{Failure::kProtocol, std::nullopt, fmt::format("{} {}", step.error, what)};
          break;
        }
      }
      auto [ec, n] = co_await readSome(buf, sizeof buf);
      if (ec || n == 0) {
        out.failure = ioFailure(ec ? ec : std::error_code(asio::error::eof), what);
        break;
      }
      pending.append(buf, n);
    }
    stream->setDeadlineAt(Clock::time_point::max());
    co_return out;
  }

  // Writes `line` (CRLF included) and reads one reply.
  awaitable<Read> command(const std::string& line, const char* what) {
    Read out;
    if (broken) {
      out.failure = Failure{Failure::kProtocol, std::nullopt, "the connection is not usable"};
      co_return out;
    }
    std::error_code ec = co_await writeAll(line, options.timeouts.command);
    if (ec) {
      out.failure = ioFailure(ec, what);
      co_return out;
    }
    out = co_await readReply(options.timeouts.command, what);
    co_return out;
  }

  std::string heloName() const {
    if (!options.helo_name.empty()) return options.helo_name;
    std::error_code ec;
    auto local = stream->socket().local_endpoint(ec);
    if (ec) return "localhost";
    auto a = local.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a.is_v4() ? fmt::format("[{}]", a.to_string()) : fmt::format("[IPv6:{}]", a.to_string());
  }
};

Connection::~Connection() {
  if (impl_ && impl_->stream) impl_->stream->close();
}

bool Connection::tls() const {
  return impl_ && impl_->stream && impl_->stream->isTls();
}

const net::TlsInfo& Connection::tlsInfo() const {
  static const net::TlsInfo kNone;
  return impl_ && impl_->stream ? impl_->stream->tlsInfo() : kNone;
}

std::string Connection::peerName() const {
  if (!peer_name_.empty()) return peer_name_;
  return impl_ ? endpointText(impl_->endpoint) : std::string();
}

namespace {

awaitable<std::error_code> connectWithin(tcp::socket& sock, const tcp::endpoint& ep, Clock::duration timeout) {
  asio::steady_timer timer(sock.get_executor());
  timer.expires_after(timeout);
  auto r = co_await (sock.async_connect(ep, net::use_nothrow) || timer.async_wait(net::use_nothrow));
  if (r.index() == 1) co_return std::error_code(asio::error::timed_out);
  co_return std::get<0>(std::get<0>(r));
}

}  // namespace

awaitable<std::pair<std::unique_ptr<Connection>, std::optional<Failure>>> Connection::open(
    tcp::endpoint server, const ClientOptions& options) {
  using Result = std::pair<std::unique_ptr<Connection>, std::optional<Failure>>;
  auto ex = co_await asio::this_coro::executor;
  std::unique_ptr<Connection> c(new Connection());
  c->impl_ = std::make_unique<Impl>();
  Impl& im = *c->impl_;
  im.options = options;
  im.endpoint = server;

  auto fail = [&](Failure f) -> Result {
    if (im.stream) im.stream->close();
    return Result{nullptr, std::move(f)};
  };

  if (options.tls != TlsMode::kNone && !options.tls_ctx)
    co_return fail(Failure{Failure::kTls, std::nullopt, "no client TLS context"});

  tcp::socket sock(ex);
  std::error_code ec = co_await connectWithin(sock, server, options.timeouts.connect);
  if (ec) {
    std::error_code ignored;
    sock.close(ignored);
    co_return fail(Failure{Failure::kConnect, std::nullopt,
                           ec == asio::error::timed_out ? std::string("connection timed out") : ec.message()});
  }
  im.stream = std::make_unique<net::Stream>(std::move(sock));

  // Verification outcome of the handshake just done: `verified` for tls_name, and a failure
  // when the mode requires it.
  auto afterHandshake = [&](bool require) -> std::optional<Failure> {
    SSL* ssl = im.stream->ssl();
    X509* peer = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;
    if (im.dane()) {
      // Always required: the TLSA records say this server must present a matching chain.
      uint8_t usage = 0;
      int depth = ssl ? SSL_get0_dane_tlsa(ssl, &usage, nullptr, nullptr, nullptr, nullptr) : -1;
      c->verified_ = peer != nullptr && v == X509_V_OK && depth >= 0;
      if (!c->verified_)
        return Failure{Failure::kTls, std::nullopt,
                       Impl::daneMismatch(v != X509_V_OK ? v : X509_V_ERR_DANE_NO_MATCH)};
      c->dane_ = daneUsageName(usage);
      return std::nullopt;
    }
    c->verified_ = peer != nullptr && v == X509_V_OK && !options.tls_name.empty();
    if (!require || c->verified_) return std::nullopt;
    std::string why = !peer                      ? std::string("no certificate")
                      : options.tls_name.empty() ? std::string("no name to verify the certificate for")
                                                 : std::string(X509_verify_cert_error_string(v));
    return Failure{Failure::kTls, std::nullopt, "certificate verify failed: " + why};
  };

  if (options.tls == TlsMode::kImplicit) {
    std::string reason;
    if (!co_await im.connectTls(reason, options.timeouts.greeting))
      co_return fail(Failure{Failure::kTls, std::nullopt, Impl::handshakeFailed(reason)});
    if (auto f = afterHandshake(true)) co_return fail(std::move(*f));
  }

  Impl::Read greeting = co_await im.readReply(options.timeouts.greeting, "waiting for the greeting");
  if (greeting.failure) co_return fail(std::move(*greeting.failure));
  if (greeting.reply->code != 220)
    co_return fail(Failure{Failure::kGreeting, std::move(greeting.reply), "the server refused the session"});

  // EHLO, HELO when EHLO is not understood (5xx, RFC 5321 §4.1.4 / §3.2).
  auto hello = [&]() -> awaitable<std::optional<Failure>> {
    const std::string name = im.heloName();
    const std::string ehlo = fmt::format("EHLO {}\r\n", name);
    Impl::Read r = co_await im.command(ehlo, "after EHLO");
    if (r.failure) co_return std::move(r.failure);
    if (r.reply->code == 250) {
      c->caps_ = parseEhlo(*r.reply);
      co_return std::nullopt;
    }
    if (!r.reply->permanent() || r.reply->code == 554)
      co_return Failure{Failure::kRejected, std::move(r.reply), "EHLO refused"};
    const std::string helo = fmt::format("HELO {}\r\n", name);
    Impl::Read h = co_await im.command(helo, "after HELO");
    if (h.failure) co_return std::move(h.failure);
    if (h.reply->code != 250) co_return Failure{Failure::kRejected, std::move(h.reply), "HELO refused"};
    c->caps_ = Capabilities();
    co_return std::nullopt;
  };
  if (auto f = co_await hello()) co_return fail(std::move(*f));

  const bool want_starttls = options.tls == TlsMode::kMay || options.tls == TlsMode::kEncrypt ||
                             options.tls == TlsMode::kVerify || (im.dane() && options.tls != TlsMode::kImplicit);
  const bool require_tls = options.tls == TlsMode::kEncrypt || options.tls == TlsMode::kVerify || im.dane();
  if (want_starttls) {
    if (!c->caps_.starttls) {
      if (require_tls)
        co_return fail(Failure{Failure::kTls, std::nullopt,
                               im.dane() ? "DANE: the server does not offer STARTTLS (TLSA records require it)"
                                         : "the server does not offer STARTTLS"});
    } else {
      const std::string starttls = "STARTTLS\r\n";
      Impl::Read r = co_await im.command(starttls, "after STARTTLS");
      if (r.failure) co_return fail(std::move(*r.failure));
      if (r.reply->code != 220) {
        if (require_tls || r.reply->code == 421)
          co_return fail(Failure{Failure::kTls, std::move(r.reply), "STARTTLS refused"});
        // kMay: carry on in plaintext.
      } else {
        // RFC 3207 §4.2: nothing read before the handshake may be taken as the server's.
        im.pending.clear();
        im.parser = ReplyParser();
        std::string reason;
        if (!co_await im.connectTls(reason, options.timeouts.command))
          co_return fail(Failure{Failure::kTls, std::nullopt, Impl::handshakeFailed(reason)});
        if (auto f = afterHandshake(options.tls == TlsMode::kVerify)) co_return fail(std::move(*f));
        // RFC 3207 §4.2: forget what was learnt before TLS and ask again.
        c->caps_ = Capabilities();
        if (auto f = co_await hello()) co_return fail(std::move(*f));
      }
    }
  }

  if (!options.auth_user.empty()) {
    if (!c->tls() && !options.allow_plain_auth)
      co_return fail(Failure{Failure::kAuth, std::nullopt, "not sending credentials without TLS"});
    const auto& mechs = c->caps_.auth;
    const bool plain = std::find(mechs.begin(), mechs.end(), "PLAIN") != mechs.end();
    const bool login = std::find(mechs.begin(), mechs.end(), "LOGIN") != mechs.end();
    if (!plain && !login)
      co_return fail(Failure{Failure::kAuth, std::nullopt,
                             mechs.empty() ? "the server does not offer AUTH" : "no common AUTH mechanism"});
    Impl::Read r;
    if (plain) {
      // RFC 4616: [authzid] NUL authcid NUL passwd, sent as the initial response (RFC 4954 §4).
      std::string token = base64Encode(std::string(1, '\0') + options.auth_user + std::string(1, '\0') +
                                 options.auth_password);
      const std::string first = "AUTH PLAIN " + token + "\r\n";
      const std::string again = token + "\r\n";
      r = co_await im.command(first, "after AUTH");
      if (!r.failure && r.reply->code == 334) r = co_await im.command(again, "after AUTH");
    } else {
      const std::string start = "AUTH LOGIN\r\n";
      const std::string user = base64Encode(options.auth_user) + "\r\n";
      const std::string pass = base64Encode(options.auth_password) + "\r\n";
      r = co_await im.command(start, "after AUTH");
      if (!r.failure && r.reply->code == 334) r = co_await im.command(user, "after AUTH");
      if (!r.failure && r.reply->code == 334) r = co_await im.command(pass, "after AUTH");
    }
    if (r.failure) co_return fail(std::move(*r.failure));
    if (r.reply->code == 334) {
      // A challenge we have no answer for: cancel the exchange (RFC 4954 §4).
      const std::string star = "*\r\n";
      Impl::Read cancel = co_await im.command(star, "after AUTH");
      co_return fail(Failure{Failure::kAuth, std::move(cancel.reply), "unexpected AUTH challenge"});
    }
    if (r.reply->code != 235) co_return fail(Failure{Failure::kAuth, std::move(r.reply), "AUTH refused"});
  }
  co_return Result{std::move(c), std::nullopt};
}

awaitable<TransactionResult> Connection::send(const Transaction& t) {
  TransactionResult res;
  Impl& im = *impl_;
  const Capabilities& caps = caps_;
  static const std::string kEmpty;
  const std::string& body = t.body ? *t.body : kEmpty;

  auto localRefusal = [&](Reply r, std::string detail) {
    res.failure = Failure{Failure::kRejected, r, std::move(detail)};
    res.mail = r;
    res.rcpt.assign(t.recipients.size(), r);
    res.reusable = !im.broken;
  };
  if (im.broken) {
    res.failure = Failure{Failure::kProtocol, std::nullopt, "the connection is not usable"};
    co_return res;
  }
  bool bad_envelope = hasLineBreak(t.mail_from) || hasLineBreak(t.ret) || hasLineBreak(t.envid);
  for (const Recipient& r : t.recipients)
    bad_envelope = bad_envelope || hasLineBreak(r.address) || hasLineBreak(r.notify) || hasLineBreak(r.orcpt);
  if (bad_envelope || t.recipients.empty()) {
    localRefusal(synthesized(501, "5.5.4", "invalid envelope (no recipient, or a line break in it)"),
                 "invalid envelope");
    co_return res;
  }
  // RFC 6531 §3.2: an envelope that needs SMTPUTF8 cannot go to a server without it.
  if (t.smtputf8 && !caps.smtputf8) {
    localRefusal(synthesized(553, "5.6.7", "the receiving server does not support SMTPUTF8"),
                 "SMTPUTF8 not offered");
    co_return res;
  }
  // RFC 1870 §6.2: do not send what the server already said it will refuse.
  if (caps.size && *caps.size > 0 && body.size() > *caps.size) {
    localRefusal(synthesized(552, "5.3.4", fmt::format("message size {} exceeds the server's limit of {}",
                                                       body.size(), *caps.size)),
                 "message too big for the server");
    co_return res;
  }

  std::string mail = fmt::format("MAIL FROM:<{}>", t.mail_from);
  if (caps.size) mail += fmt::format(" SIZE={}", body.size());
  if (t.eightbit && caps.eightbitmime) mail += " BODY=8BITMIME";
  if (t.smtputf8) mail += " SMTPUTF8";
  if (caps.dsn && !t.ret.empty()) mail += " RET=" + t.ret;
  if (caps.dsn && !t.envid.empty()) mail += " ENVID=" + xtext(t.envid);
  mail += "\r\n";
  std::vector<std::string> rcpts;
  for (const Recipient& r : t.recipients) {
    std::string line = fmt::format("RCPT TO:<{}>", r.address);
    if (caps.dsn && !r.notify.empty()) line += " NOTIFY=" + r.notify;
    if (caps.dsn && !r.orcpt.empty()) {
      // "addr-type;address": the address as xtext (RFC 3461 §4.2).
      size_t semi = r.orcpt.find(';');
      line += semi == std::string::npos ? " ORCPT=rfc822;" + xtext(r.orcpt)
                                        : " ORCPT=" + r.orcpt.substr(0, semi + 1) + xtext(r.orcpt.substr(semi + 1));
    }
    rcpts.push_back(line + "\r\n");
  }

  auto connectionFailure = [&](Failure f) {
    res.failure = std::move(f);
    res.reusable = false;
    im.broken = true;
  };
  auto accepted = [&]() {
    return std::any_of(res.rcpt.begin(), res.rcpt.end(), [](const Reply& r) { return r.positive(); });
  };

  std::optional<Reply> data_reply;
  if (caps.pipelining) {
    // RFC 2920 §3.1: MAIL, every RCPT and DATA in one write, then the replies in order.
    std::string batch = mail;
    for (const std::string& l : rcpts) batch += l;
    batch += "DATA\r\n";
    if (auto ec = co_await im.writeAll(batch, im.options.timeouts.command)) {
      connectionFailure(im.ioFailure(ec, "sending MAIL"));
      co_return res;
    }
    Impl::Read m = co_await im.readReply(im.options.timeouts.command, "after MAIL");
    if (m.failure) {
      connectionFailure(std::move(*m.failure));
      co_return res;
    }
    res.mail = m.reply;
    std::vector<Reply> rr;
    for (size_t i = 0; i < rcpts.size() && !im.broken; ++i) {
      Impl::Read r = co_await im.readReply(im.options.timeouts.command, "after RCPT");
      if (r.failure) {
        res.rcpt = std::move(rr);
        connectionFailure(std::move(*r.failure));
        co_return res;
      }
      rr.push_back(std::move(*r.reply));
    }
    Impl::Read d;
    if (!im.broken) {
      d = co_await im.readReply(im.options.timeouts.command, "after DATA");
      if (d.failure) {
        if (m.reply->positive()) res.rcpt = std::move(rr);
        connectionFailure(std::move(*d.failure));
        co_return res;
      }
    }
    if (!m.reply->positive()) {
      res.failure = Failure{Failure::kRejected, m.reply, "MAIL refused"};
      if (d.reply && d.reply->code == 354) im.broken = true;  // a server gone wrong: do not feed it
      res.reusable = !im.broken;
      co_return res;
    }
    res.rcpt = std::move(rr);
    if (im.broken) {  // a 421 among the replies: the server is closing the session
      Reply closing = d.reply ? *d.reply : res.rcpt.back();
      while (res.rcpt.size() < rcpts.size()) res.rcpt.push_back(closing);
      res.failure = Failure{Failure::kRejected, closing, "the server closed the session"};
      res.reusable = false;
      co_return res;
    }
    if (!accepted()) {
      // The server answered DATA with 503/554: no body goes out. Servers differ on whether
      // the MAIL state survives that (aiosmtpd keeps it and answers the next MAIL with 503),
      // so RSET before the connection carries another transaction.
      if (d.reply->code == 354) {
        // It wants a body for no recipient: ending it is not safe; drop the session.
        im.broken = true;
        res.reusable = false;
        co_return res;
      }
      bool clean = co_await reset();
      res.reusable = clean;
      co_return res;
    }
    data_reply = std::move(d.reply);
  } else {
    Impl::Read m = co_await im.command(mail, "after MAIL");
    if (m.failure) {
      connectionFailure(std::move(*m.failure));
      co_return res;
    }
    res.mail = m.reply;
    if (!m.reply->positive()) {
      res.failure = Failure{Failure::kRejected, m.reply, "MAIL refused"};
      res.reusable = !im.broken;
      co_return res;
    }
    for (const std::string& l : rcpts) {
      if (im.broken) {  // a 421: the rest cannot be asked
        res.rcpt.push_back(res.rcpt.back());
        continue;
      }
      Impl::Read r = co_await im.command(l, "after RCPT");
      if (r.failure) {
        connectionFailure(std::move(*r.failure));
        co_return res;
      }
      res.rcpt.push_back(std::move(*r.reply));
    }
    if (im.broken) {
      res.failure = Failure{Failure::kRejected, res.rcpt.back(), "the server closed the session"};
      res.reusable = false;
      co_return res;
    }
    if (!accepted()) {
      bool clean = co_await reset();
      res.reusable = clean;
      co_return res;
    }
    const std::string data_cmd = "DATA\r\n";
    Impl::Read d = co_await im.command(data_cmd, "after DATA");
    if (d.failure) {
      connectionFailure(std::move(*d.failure));
      co_return res;
    }
    data_reply = std::move(d.reply);
  }

  if (data_reply->code != 354) {
    // DATA refused with recipients accepted: that is their outcome. RSET for a clean state.
    res.data = std::move(data_reply);
    bool clean = false;
    if (!im.broken) clean = co_await reset();
    res.reusable = clean;
    co_return res;
  }

  const std::string stuffed = dotStuff(body);
  for (size_t off = 0; off < stuffed.size(); off += kBodyBlock) {
    std::string_view block(stuffed.data() + off, std::min(kBodyBlock, stuffed.size() - off));
    if (auto ec = co_await im.writeAll(block, im.options.timeouts.data_block)) {
      connectionFailure(im.ioFailure(ec, "sending the message"));
      co_return res;
    }
  }
  Impl::Read fin = co_await im.readReply(im.options.timeouts.data_end, "after the end of data");
  if (fin.failure) {
    connectionFailure(std::move(*fin.failure));
    co_return res;
  }
  res.data = std::move(fin.reply);
  res.reusable = !im.broken;
  co_return res;
}

awaitable<bool> Connection::reset() {
  Impl& im = *impl_;
  if (im.broken) co_return false;
  const std::string rset = "RSET\r\n";
  Impl::Read r = co_await im.command(rset, "after RSET");
  if (r.failure || r.reply->code != 250) {
    im.broken = true;
    co_return false;
  }
  co_return true;
}

awaitable<void> Connection::quit() {
  Impl& im = *impl_;
  if (im.stream && !im.broken) {
    ClientTimeouts saved = im.options.timeouts;
    im.options.timeouts.command = std::min<std::chrono::milliseconds>(saved.command, kMaxQuitWait);
    const std::string quit_cmd = "QUIT\r\n";
    co_await im.command(quit_cmd, "after QUIT");
    im.options.timeouts = saved;
  }
  im.broken = true;
  if (im.stream) im.stream->close();
}

}  // namespace postern::smtp::client
