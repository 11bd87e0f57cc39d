// RFC 5321 session loop and the simple verbs: HELO/EHLO (§4.1.1.1), RSET (§4.1.1.5),
// NOOP (§4.1.1.9), QUIT (§4.1.1.10), VRFY (§3.5.3: 252), HELP (§4.1.1.8).
#include "smtp/server/session.h"

#include <fmt/format.h>

#include "directory/directory_service.h"
#include "log/log.h"
#include "metrics/server_metrics.h"
#include "proxy/diagnostics.h"
#include "proxy/proxy_parser.h"
#include "smtp/proto/helo.h"
#include "smtp/proto/line.h"
#include "smtp/proto/reply.h"
#include "protect/protector.h"
#include "spool/spool.h"
#include "util/strings.h"

namespace postern::smtp {

using namespace std::chrono_literals;

Session::Session(ServerContext& ctx, net::Stream& stream, ConnectionInfo info)
    : ctx_(ctx),
      stream_(stream),
      info_(std::move(info)),
      command_timeout_(std::chrono::milliseconds(ctx.config.smtp.command_timeout_ms)) {}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
  if (info_.metrics) info_.metrics->reply(code);
  appendReply(out_, code, enhanced, text);
}

void Session::replyLines(int code, std::string_view enhanced, const std::vector<std::string>& lines) {
  if (info_.metrics) info_.metrics->reply(code);
  std::vector<std::string_view> views(lines.begin(), lines.end());
  appendReplyLines(out_, code, enhanced, views);
}

bool Session::countError() {
  ++errors_;
  if (errors_ >= ctx_.config.smtp.max_errors) {
    ctx_.counters.inc("smtp.too_many_errors");
    log::warn("smtp.too_many_errors").kv("conn", info_.id).kv("client", info_.client.toString())
        .kv("errors", uint64_t(errors_));
    reply(421, "4.7.0", fmt::format("{} Too many errors, closing connection", ctx_.config.hostname));
    quit_ = true;
    return true;
  }
  return false;
}

void Session::reject(const Rejection& r, int code, std::string_view enhanced, std::string_view text) {
  ctx_.counters.inc(r.counter);
  auto ev = log::info("smtp.rejected");
  ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  ev.opt("user", user_).kv("code", code).kv("reason", text).kv("counter", r.counter.name());
  reply(code, enhanced, text);
  if (r.offense && ctx_.protector.record(info_.client.address, *r.offense, text)) {
    reply(421, "4.7.0", fmt::format("{} Client [{}] blocked for repeated errors; try again later",
                                    ctx_.config.hostname, info_.client.address.toString()));
    quit_ = true;
    return;
  }
  countError();
}

net::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  stream_.setDeadline(command_timeout_);
  auto ec = co_await stream_.writeAll(out_);
  out_.clear();
  if (out_.capacity() > 4 * kReadChunk) std::string().swap(out_);
  co_return !ec;
}

Session::TimePoint Session::dataDeadline() const {
  auto idle = std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.config.smtp.data_timeout_ms);
  auto whole = transaction_start_ + std::chrono::milliseconds(ctx_.config.smtp.transaction_timeout_ms);
  return std::min(idle, whole);
}

net::awaitable<Session::ReadResult> Session::readMore(TimePoint deadline) {
  if (!co_await flush()) co_return ReadResult::kError;
  stream_.setDeadlineAt(deadline);
  size_t old = in_.size();
  in_.resize(old + kReadChunk);
  auto [ec, n] = co_await stream_.readSome(in_.data() + old, kReadChunk);
  in_.resize(old + n);
  if (!ec) co_return ReadResult::kOk;
  if (stream_.expired() || ec == asio::error::timed_out) co_return ReadResult::kTimeout;
  if (ec == asio::error::eof) co_return ReadResult::kEof;
  if (ec == asio::error::operation_aborted && ctx_.shutting_down.load()) co_return ReadResult::kInterrupted;
  co_return ReadResult::kError;
}

Session::HeaderCheck Session::checkProxyHeader() {
  const proxy::Signature sig = proxy::detectSignature(proxy::asBytes(in_));
  switch (sig) {
    case proxy::Signature::kNone:
      guard_proxy_ = false;
      return HeaderCheck::kClear;
    case proxy::Signature::kNeedMore:
      // Empty input, or a prefix of a signature: wait for more bytes before answering.
      return in_.empty() ? HeaderCheck::kClear : HeaderCheck::kWait;
    case proxy::Signature::kV1:
    case proxy::Signature::kV2:
      logProxyHeader(sig == proxy::Signature::kV1);
      out_.clear();
      return HeaderCheck::kHeader;
  }
  return HeaderCheck::kClear;
}

bool Session::proxyHeaderWaiting() {
  std::error_code ec;
  if (!in_.empty() || stream_.socket().available(ec) == 0 || ec) return false;
  // Peek, so that bytes which are not a header stay in the socket for the early-talker
  // test and the command loop. Returns at once: bytes are known to be waiting.
  uint8_t buf[proxy::kV2SignatureLength];
  size_t n = stream_.socket().receive(asio::buffer(buf), asio::socket_base::message_peek, ec);
  if (ec) return false;
  auto sig = proxy::detectSignature(std::span<const uint8_t>(buf, n));
  if (sig != proxy::Signature::kV1 && sig != proxy::Signature::kV2) return false;
  logProxyHeader(sig == proxy::Signature::kV1);
  return true;
}

void Session::logProxyHeader(bool v1) {
  auto m = proxy::headerWhereNoneExpected(info_.listener->proxy == config::ProxyMode::kOff, info_.listener->name,
                                          info_.listener->address.port);
  ctx_.counters.inc(m.event);
  if (info_.metrics)
    if (int kind = metrics::proxyErrorKind(m.event); kind >= 0) info_.metrics->proxy_errors[size_t(kind)]->inc();
  log::warn(m.event.name()).kv("conn", info_.id).kv("listener", info_.listener->name)
      .kv("port", uint64_t(info_.listener->address.port)).kv("peer", info_.peer.toString())
      .kv("detail", v1 ? "PROXY v1 header" : "PROXY v2 header").kv("fix", m.fix);
}

void Session::rejectLine(LineStatus why) {
  switch (why) {
    case LineStatus::kTooLong: reject(rejection::kLineTooLong, 500, "5.5.2", "Line too long"); break;
    case LineStatus::kBareNewline:
      reject(rejection::kBareNewlineCommand, 500, "5.5.2",
             "Bare LF or CR in command line; lines must end with CRLF (RFC 5321 section 2.3.8)");
      break;
    case LineStatus::kNul: reject(rejection::kNulInCommand, 500, "5.5.2", "NUL character in command line"); break;
    case LineStatus::kLine:
    case LineStatus::kNeedMore: break;
  }
}

net::awaitable<std::optional<std::string>> Session::readLine(size_t max, std::chrono::milliseconds timeout,
                                                            LineStatus* refused) {
  // Inside a refused line: drop bytes up to its CRLF. No byte of a refused line may ever
  // be read as a command (a bare LF must not smuggle a second command past the 500).
  enum class Discard : uint8_t { kNone, kTooLong, kRefused };
  Discard discarding = Discard::kNone;
  const TimePoint deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (discarding != Discard::kNone) {
      bool found = false;
      size_t n = discardUntilCrlf(in_, found);
      in_.erase(0, n);
      if (found) {
        // An over-long line is answered once its end is seen; a bare newline was already
        // answered when seen, unless the caller answers it.
        const LineStatus why = discarding == Discard::kTooLong ? LineStatus::kTooLong : LineStatus::kBareNewline;
        discarding = Discard::kNone;
        if (refused) {
          *refused = why;
          co_return std::string();
        }
        if (why == LineStatus::kTooLong) {
          rejectLine(why);
          if (quit_) co_return std::nullopt;
        }
        continue;
      }
    } else if (HeaderCheck h = guard_proxy_ ? checkProxyHeader() : HeaderCheck::kClear; h != HeaderCheck::kClear) {
      if (h == HeaderCheck::kHeader) co_return std::nullopt;
      // kWait: could still become a PROXY signature; read more before answering.
    } else {
      LineResult r = nextLine(in_, max);
      switch (r.status) {
        case LineStatus::kLine: {
          std::string line(r.line);
          in_.erase(0, r.consumed);
          co_return line;
        }
        case LineStatus::kTooLong:
          in_.erase(0, r.consumed);
          discarding = Discard::kTooLong;
          continue;
        case LineStatus::kBareNewline:
          in_.erase(0, r.consumed);
          if (!refused) {
            rejectLine(r.status);
            if (quit_) co_return std::nullopt;
          }
          discarding = Discard::kRefused;  // the rest of the line, up to its CRLF, goes too
          continue;
        case LineStatus::kNul:
          in_.erase(0, r.consumed);
          if (refused) {
            *refused = r.status;
            co_return std::string();
          }
          rejectLine(r.status);
          if (quit_) co_return std::nullopt;
          continue;
        case LineStatus::kNeedMore: break;
      }
    }
    ReadResult rr = co_await readMore(deadline);
    if (rr == ReadResult::kTimeout) {
      ctx_.counters.inc("smtp.timeout");
      log::info("smtp.timeout").kv("conn", info_.id).kv("client", info_.client.toString())
          .kv("state", in_mail_ ? "transaction" : "command");
      reply(421, "4.4.2", fmt::format("{} Timeout exceeded, closing connection", ctx_.config.hostname));
      stream_.setDeadline(kFinalWriteGrace);
      co_await flush();
      co_return std::nullopt;
    }
    if (rr == ReadResult::kInterrupted) {
      reply(421, "4.3.2", fmt::format("{} Service shutting down, closing connection", ctx_.config.hostname));
      stream_.setDeadline(kFinalWriteGrace);
      co_await flush();
      co_return std::nullopt;
    }
    if (rr != ReadResult::kOk) co_return std::nullopt;
  }
}

bool Session::tlsAvailable() const { return ctx_.certs != nullptr; }

bool Session::authRequired() const { return info_.listener->service->auth_required; }

// Pregreet test on the smtp listener: a client that talks before the greeting is a bot
// that does not wait for replies (RFC 5321 §4.3.1: the client waits for the 220).
net::awaitable<bool> Session::earlyTalker() {
  if (info_.listener->service->service != config::Service::kSmtp) co_return false;
  if (ctx_.config.smtp.greeting_delay_ms > 0) {
    if (!in_.empty()) co_return true;
    ReadResult rr = co_await readMore(std::chrono::steady_clock::now() +
                                      std::chrono::milliseconds(ctx_.config.smtp.greeting_delay_ms));
    if (rr == ReadResult::kOk && guard_proxy_ && checkProxyHeader() == HeaderCheck::kHeader) {
      quit_ = true;   // a PROXY header, not a talkative client: logged as such, nothing sent
      co_return false;
    }
    if (rr == ReadResult::kOk) co_return true;
    if (rr != ReadResult::kTimeout) quit_ = true;
    co_return false;
  }
  // Without a delay only a direct client whose bytes were already waiting at accept
  // time is caught (bytes that came with a PROXY header may have been merged by the proxy).
  std::error_code ec;
  co_return !info_.proxied && in_.empty() && stream_.socket().available(ec) > 0 && !ec;
}

net::awaitable<void> Session::run() {
  // A PROXY header already waiting on a listener that expects none is named as such (not
  // as an early talker) and answered with nothing, not even the greeting.
  if (guard_proxy_ && proxyHeaderWaiting()) co_return;
  if (co_await earlyTalker()) {
    ctx_.counters.inc("smtp.early_talker");
    log::info("smtp.rejected").kv("conn", info_.id).kv("listener", info_.listener->name)
        .kv("client", info_.client.toString()).kv("code", 554).kv("counter", "smtp.early_talker")
        .kv("reason", "client talked before the greeting");
    ctx_.protector.record(info_.client.address, protect::Offense::kEarlyTalker, "talked before the greeting");
    reply(554, "5.5.1", fmt::format("{} Protocol error: talking before the greeting", ctx_.config.hostname));
    stream_.setDeadline(kFinalWriteGrace);
    co_await flush();
    co_return;
  }
  if (quit_) co_return;
  startDnsbl();
  co_await milterConnect();
  reply(220, "", fmt::format("{} ESMTP Postern", ctx_.config.hostname));
  while (!quit_) {
    if (ctx_.shutting_down.load(std::memory_order_relaxed) && !in_mail_) {
      reply(421, "4.3.2", fmt::format("{} Service shutting down, closing connection", ctx_.config.hostname));
      break;
    }
    waiting_command_ = true;
    std::optional<std::string> line = co_await readLine(kMaxCommandLine, command_timeout_);
    waiting_command_ = false;
    if (!line) break;
    auto parsed = parseCommand(*line);
    if (auto* err = std::get_if<CommandError>(&parsed)) {
      reject(rejection::kSyntaxError, err->code, err->enhanced, err->text);
      if (istartsWith(*line, "BDAT")) {
        // The chunk that follows has an unknown length: its bytes must never be read as
        // commands, so the session cannot go on (RFC 3030 §2).
        reply(421, "4.5.0", fmt::format("{} Cannot resynchronise after a bad BDAT command", ctx_.config.hostname));
        break;
      }
      continue;
    }
    if (!co_await dispatch(std::get<Command>(parsed))) break;
  }
  stream_.setDeadline(kFinalWriteGrace);
  co_await flush();
  if (in_mail_) resetTransaction();
  co_await milterQuit();
}

net::awaitable<bool> Session::dispatch(const Command& cmd) {
  switch (cmd.verb) {
    case Verb::kEhlo:
    case Verb::kHelo: {
      if (!milters_.empty()) co_await milterAbort();
      size_t mark = out_.size();
      onHelo(cmd, cmd.verb == Verb::kEhlo);
      if (!milters_.empty() && repliedOk(mark)) co_await milterHelo(mark);
      break;
    }
    case Verb::kMail: {
      if (!milters_.empty() && !in_mail_) co_await milterAbort();
      size_t mark = out_.size();
      onMail(cmd);
      if (!milters_.empty() && in_mail_ && repliedOk(mark)) co_await milterMail(cmd, mark);
      break;
    }
    case Verb::kRcpt: {
      size_t mark = out_.size(), recipients = env_.recipients.size(), displayed = rcpt_display_.size();
      co_await onRcpt(cmd);
      if (!milters_.empty() && rcpt_display_.size() > displayed && repliedOk(mark))
        co_await milterRcpt(cmd, mark, recipients, displayed);
      break;
    }
    case Verb::kData: co_return co_await onData(cmd);
    case Verb::kBdat: co_return co_await onBdat(cmd);
    case Verb::kAuth: co_return co_await onAuth(cmd);
    case Verb::kStarttls: co_return co_await onStarttls(cmd);
    case Verb::kRset:
      if (!milters_.empty()) co_await milterAbort();
      resetTransaction();
      reply(250, "2.0.0", "Ok");
      break;
    case Verb::kNoop: reply(250, "2.0.0", "Ok"); break;
    case Verb::kQuit:
      reply(221, "2.0.0", "Bye");
      quit_ = true;
      break;
    case Verb::kVrfy: reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"); break;
    case Verb::kExpn: reject(rejection::kExpn, 502, "5.5.1", "EXPN is not supported"); break;
    case Verb::kHelp:
      reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
      break;
    case Verb::kUnknown: reject(rejection::kUnknownCommand, 500, "5.5.2", "Command not recognized"); break;
  }
  co_return !quit_;
}

void Session::onHelo(const Command& cmd, bool extended) {
  if (cmd.argument.empty()) {
    reject(rejection::kSyntaxError, 501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    return;
  }
  // Only a validated name is kept: it goes into the Received header and the EHLO reply.
  if (std::string_view why = heloArgumentError(cmd.argument); !why.empty()) {
    reject(rejection::kBadHelo, 501, "5.5.2",
           fmt::format("Invalid {} argument: {}; send your host name or an address literal (RFC 5321 section 4.1.4)",
                       extended ? "EHLO" : "HELO", why));
    return;
  }
  // RFC 5321 §4.1.4: EHLO/HELO also resets the transaction.
  resetTransaction();
  helo_ = std::string(cmd.argument);
  esmtp_ = extended;
  if (!extended) {
    reply(250, "", ctx_.config.hostname);
    return;
  }
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{} Hello {} [{}]", ctx_.config.hostname, helo_, info_.client.address.toString()));
  lines.push_back("PIPELINING");
  lines.push_back(fmt::format("SIZE {}", ctx_.config.smtp.max_message_size));
  lines.push_back("8BITMIME");
  lines.push_back("ENHANCEDSTATUSCODES");
  lines.push_back("DSN");   // RFC 3461: RET, ENVID, NOTIFY, ORCPT (smtp/proto/command.h)
  lines.push_back("SMTPUTF8");
  lines.push_back("CHUNKING");
  if (!stream_.isTls() && tlsAvailable() && info_.listener->service->offers_starttls) lines.push_back("STARTTLS");
  if (stream_.isTls() && user_.empty()) lines.push_back("AUTH PLAIN LOGIN");
  replyLines(250, "", lines);
}

void Session::resetTransaction() {
  if (in_mail_ && spilled_) ctx_.spool.abort(env_.queue_id);
  in_mail_ = false;
  env_ = spool::Envelope();
  smtputf8_ = false;
  declared_size_ = 0;
  rcpt_attempts_ = 0;
  rcpt_display_.clear();
  bdat_mode_ = false;
  bdat_checker_.reset();
  body_started_ = false;
  body_failed_ = false;
  std::string().swap(body_);
  body_size_ = 0;
  spilled_ = false;
  whole_ = false;
  spf_.reset();
  verify_summary_.clear();
  dir_.reset();
}

}  // namespace postern::smtp
