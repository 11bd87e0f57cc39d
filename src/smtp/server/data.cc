// DATA (RFC 5321 §4.1.1.4, transparency §4.5.2) and BDAT (RFC 3030 §2), and handing the
// message to the spool: the 250 reply is written only after the spool's fdatasync.
#include <fmt/format.h>

#include <ctime>

#include "dkim/key_store.h"
#include "queue/queue.h"
#include "log/log.h"
#include "smtp/proto/data_scanner.h"
#include "smtp/server/session.h"
#include "spool/spool.h"
#include "util/time_text.h"

namespace postern::smtp {
namespace {

BareNewlines policy(const config::Config& c) {
  return c.smtp.bare_newlines == config::BareNewlinePolicy::kReject ? BareNewlines::kReject : BareNewlines::kNormalize;
}


// Waits for a spool callback (run on the spool's writer thread) and resumes the session
// on its own executor. `start(cb)` hands `cb` to the spool.
template <class Start>
auto awaitSpool(Start start) {
  auto init = [](auto handler, Start st) {
    auto ex = asio::get_associated_executor(handler);
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    st([shared, ex](Status s) {
      asio::post(ex, [shared, s = std::move(s)]() mutable { std::move(*shared)(std::move(s)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(init, asio::use_awaitable,
                                                                          std::move(start));
}

}  // namespace

std::string Session::protocolName() const {
  // RFC 3848 transmission types.
  std::string p = esmtp_ ? "ESMTP" : "SMTP";
  if (stream_.isTls()) p += "S";
  if (!user_.empty()) p += "A";
  if (smtputf8_) p = "UTF8" + p;
  return p;
}

// RFC 5321 §4.4 trace information.
std::string Session::receivedHeader() const {
  std::string h = fmt::format("Received: from {} ([{}])\r\n\tby {} (Postern) with {} id {}", helo_,
                              info_.client.address.toString(), ctx_.config.hostname, protocolName(), env_.queue_id);
  if (stream_.isTls())
    h += fmt::format("\r\n\t(using {} with cipher {})", stream_.tlsInfo().version, stream_.tlsInfo().cipher);
  if (!user_.empty()) h += fmt::format("\r\n\t(authenticated sender: {})", user_);
  if (rcpt_display_.size() == 1) h += fmt::format("\r\n\tfor <{}>", rcpt_display_.front());
  h += fmt::format("; {}\r\n", rfc5322Date(nowUnixUs()));
  return h;
}

void Session::beginBody() {
  body_started_ = true;
  body_ = receivedHeader();
  body_size_ = body_.size();   // the spool stores the message with our trace header
}

// Moves the in-memory part of the body to the spool, so a large message never holds more
// than kSpoolChunk bytes of memory.
net::awaitable<Status> Session::spillBody() {
  // The lambda captures only `this`: the session outlives the wait, and g++ 12 must not
  // see non-trivial captures in a co_await expression.
  auto start = [this](auto cb) {
    std::string chunk;
    chunk.swap(body_);
    ctx_.spool.appendChunk(env_.queue_id, std::move(chunk), std::move(cb));
  };
  Status s = co_await awaitSpool(start);
  spilled_ = true;
  if (!s) {
    ctx_.counters.inc("smtp.spool_failed");
    log::error("smtp.spool_failed").kv("conn", info_.id).kv("queue_id", env_.queue_id).kv("reason", s.message());
  }
  co_return s;
}

// The reply for a message the spool could not store: a full disk is RFC 3463's "mail
// system full" (4.3.1); anything else a local error. Both are temporary: try again later.
void Session::replyStorageError(const Status& s) {
  if (s.isNoSpace()) reply(452, "4.3.1", "Insufficient system storage; try again later");
  else reply(451, "4.3.0", "Local error: message could not be stored; try again later");
}

bool Session::holdForSigning() const {
  return !user_.empty() && ctx_.dkim && !ctx_.dkim->current()->empty();
}

// DKIM signing at acceptance (docs/configuration.md [dkim]): only mail from an
// authenticated user, with the key of its From: domain. A message that cannot be signed is
// still accepted, unsigned, with a warning: refusing it would not make it signable.
// Hashing and signing run on the CPU pool, not on this connection's event loop (a large
// message takes tens of milliseconds); body_ is not touched by anything else meanwhile.
net::awaitable<Session::Signed> Session::signBody() {
  Signed out;
  if (!holdForSigning() || (spilled_ && !whole_)) co_return out;
  std::shared_ptr<const dkim::KeySet> keys = ctx_.dkim->current();
  const std::string* message = &body_;
  const int64_t now = static_cast<int64_t>(nowUnixUs() / 1'000'000);
  auto work = [keys, message, now]() { return dkim::signWithKeyFor(*keys, *message, now); };
  dkim::SignOutcome r = co_await net::offload(ctx_.cpu_pool, std::move(work));
  if (r.kind == dkim::SignOutcome::Kind::kNoKey) co_return out;
  out.domain = r.domain;
  out.selector = r.selector;
  if (r.kind == dkim::SignOutcome::Kind::kFailed) {
    out.status = "failed";
    ctx_.counters.inc("dkim.sign_failed");
    log::warn("dkim.sign_failed").kv("conn", info_.id).kv("queue_id", env_.queue_id).kv("d", r.domain)
        .kv("s", r.selector).kv("reason", r.reason).kv("status", "accepted_unsigned");
    co_return out;
  }
  out.status = "signed";
  ctx_.counters.inc("dkim.signed");
  body_size_ += r.field.size();
  body_.insert(0, r.field);   // above our Received: the newest trace and signature on top
  co_return out;
}

net::awaitable<bool> Session::commitMessage() {
  if (!co_await prepareMessage()) {
    resetTransaction();
    co_return !quit_;
  }
  Signed dkim = co_await signBody();
  env_.size = body_size_;
  pending_tail_ = std::make_shared<const std::string>(std::move(body_));
  body_.clear();
  auto start = [this](auto cb) { ctx_.spool.commit(env_, pending_tail_, std::move(cb), whole_); };
  Status s = co_await awaitSpool(start);
  std::shared_ptr<const std::string> tail = std::move(pending_tail_);
  std::vector<std::string> to;
  for (const auto& r : env_.recipients) to.push_back(r.mailbox);
  auto ev = log::info(s ? "smtp.accepted" : "smtp.spool_failed");
  ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  if (stream_.isTls()) ev.kv("tls", stream_.tlsInfo().version + " " + stream_.tlsInfo().cipher);
  ev.opt("user", user_).kv("queue_id", env_.queue_id).kv("from", env_.mail_from).kv("to", fmt::format("{}", fmt::join(to, ",")))
      .kv("size", body_size_).kv("status", s ? "queued" : "failed");
  if (!dkim.status.empty()) ev.kv("dkim", dkim.status).kv("d", dkim.domain).kv("s", dkim.selector);
  if (!verify_summary_.empty()) ev.kv("verify", verify_summary_);
  if (env_.flags & spool::kJunk) ev.kv("folder", "Junk");
  if (!s) {
    ev.kv("reason", s.message());
    ctx_.counters.inc("smtp.spool_failed");
    replyStorageError(s);
    resetTransaction();
    co_return true;
  }
  ctx_.counters.inc("smtp.accepted");
  reply(250, "2.0.0", fmt::format("Ok: queued as {}", env_.queue_id));
  // A small message is delivered from memory, without reading it back from the spool.
  ctx_.queue.add(env_, spilled_ && !whole_ ? nullptr : tail);
  spilled_ = false;                 // the spool owns it now; reset must not abort it
  resetTransaction();
  co_return true;
}

net::awaitable<bool> Session::onData(const Command& cmd) {
  if (!cmd.argument.empty()) {
    reject(rejection::kSyntaxError, 501, "5.5.4", "DATA takes no arguments");
    co_return !quit_;
  }
  if (!in_mail_) {
    reject(rejection::kBadSequence, 503, "5.5.1", "Need MAIL command first");
    co_return !quit_;
  }
  if (bdat_mode_) {
    reject(rejection::kBadSequence, 503, "5.5.1", "DATA after BDAT is not allowed");
    co_return !quit_;
  }
  if (env_.recipients.empty()) {
    if (rcpt_attempts_ > 0) reject(rejection::kNoValidRecipients, 554, "5.5.1", "No valid recipients");
    else reject(rejection::kBadSequence, 503, "5.5.1", "Need RCPT command first");
    co_return !quit_;
  }
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  beginBody();
  DataScanner scanner(policy(ctx_.config), ctx_.config.smtp.max_line_length);
  scanner.setSizeLimit(ctx_.config.smtp.max_message_size);
  Status stored;   // a failed spill: the rest is read and dropped, then refused
  for (;;) {
    size_t before = body_.size();
    DataScanner::Result r = scanner.feed(in_, body_);
    body_size_ += body_.size() - before;
    in_.erase(0, r.consumed);
    if (r.done) break;
    if (stored && body_.size() >= kSpoolChunk && !scanner.overLimit() && !scanner.bareNewline()) {
      if (!holdForSigning()) {   // else kept whole, up to max_message_size, to be signed
        stored = co_await spillBody();
        if (!stored) body_.clear();
      }
    } else if (body_.size() >= kSpoolChunk) {
      body_.clear();    // rejected anyway: keep memory bounded
    }
    ReadResult rr = co_await readMore(dataDeadline());
    if (rr == ReadResult::kTimeout) {
      ctx_.counters.inc("smtp.timeout");
      log::info("smtp.timeout").kv("conn", info_.id).kv("client", info_.client.toString()).kv("state", "data");
      reply(421, "4.4.2", fmt::format("{} Timeout exceeded, closing connection", ctx_.config.hostname));
      resetTransaction();
      co_return false;
    }
    if (rr != ReadResult::kOk) {
      resetTransaction();
      co_return false;
    }
  }
  if (!stored) {
    replyStorageError(stored);
    resetTransaction();
    co_return !quit_;
  }
  if (scanner.bareNewline()) {
    reject(rejection::kBareNewlineData, 554, "5.6.0",
           "Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)");
    resetTransaction();
    co_return !quit_;
  }
  if (scanner.sawNul()) {
    reject(rejection::kNulInData, 554, "5.6.0", "Message contains NUL characters; not accepted");
    resetTransaction();
    co_return !quit_;
  }
  if (scanner.overLimit()) {
    reject(rejection::kSizeExceeded, 552, "5.3.4", "Message size exceeds fixed maximum message size");
    resetTransaction();
    co_return !quit_;
  }
  if (scanner.lineTooLong()) {
    reject(rejection::kLineTooLong, 500, "5.5.2",
           fmt::format("Message has a line longer than {} octets (RFC 5321 section 4.5.3.1.6)",
                       ctx_.config.smtp.max_line_length));
    resetTransaction();
    co_return !quit_;
  }
  if (refuseAllOverQuota()) {
    resetTransaction();
    co_return !quit_;
  }
  co_return co_await commitMessage();
}

net::awaitable<bool> Session::onBdat(const Command& cmd) {
  // RFC 3030 §2: the chunk is read in full whatever the reply will be.
  uint64_t remaining = cmd.chunk_size;
  const Rejection* error = nullptr;
  int code = 0;
  std::string_view enhanced, text;
  std::string why;
  Status storage_error;
  if (!in_mail_) {
    error = &rejection::kBadSequence, code = 503, enhanced = "5.5.1", text = "Need MAIL command first";
  } else if (env_.recipients.empty()) {
    error = &rejection::kBadSequence, code = 503, enhanced = "5.5.1", text = "Need RCPT command first";
  } else if (body_failed_) {
    error = &rejection::kBdatAfterError, code = 503, enhanced = "5.5.1",
    text = "Previous BDAT failed; send RSET";
  }
  bool accepting = error == nullptr;
  if (accepting && !bdat_mode_) {
    bdat_mode_ = true;
    beginBody();
  }
  if (!bdat_checker_) bdat_checker_.emplace(policy(ctx_.config), ctx_.config.smtp.max_line_length);
  TextChecker& checker = *bdat_checker_;
  while (remaining > 0) {
    if (in_.empty()) {
      ReadResult rr = co_await readMore(dataDeadline());
      if (rr != ReadResult::kOk) {
        if (rr == ReadResult::kTimeout) {
          ctx_.counters.inc("smtp.timeout");
          reply(421, "4.4.2", fmt::format("{} Timeout exceeded, closing connection", ctx_.config.hostname));
        }
        resetTransaction();
        co_return false;
      }
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, in_.size()));
    if (accepting) {
      size_t before = body_.size();
      checker.feed(std::string_view(in_.data(), n), body_);
      body_size_ += body_.size() - before;
      if (body_size_ > ctx_.config.smtp.max_message_size) {
        accepting = false;
        body_failed_ = true;
        error = &rejection::kSizeExceeded, code = 552, enhanced = "5.3.4",
        text = "Message size exceeds fixed maximum message size";
        body_.clear();
      } else if (body_.size() >= kSpoolChunk && !checker.bareNewline() && !holdForSigning()) {
        in_.erase(0, n);
        remaining -= n;
        if (Status st = co_await spillBody(); !st) {
          // The chunk is still read in full (RFC 3030 §2); the reply says why.
          accepting = false;
          body_failed_ = true;
          error = nullptr;
          storage_error = st;
          body_.clear();
        }
        continue;
      }
    }
    in_.erase(0, n);
    remaining -= n;
  }
  if (accepting && cmd.last) checker.finish(body_);
  if (accepting && checker.bareNewline()) {
    accepting = false;
    body_failed_ = true;
    error = &rejection::kBareNewlineData, code = 554, enhanced = "5.6.0",
    text = "Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 section 2.3.8)";
  }
  if (accepting && checker.sawNul()) {
    accepting = false;
    body_failed_ = true;
    error = &rejection::kNulInData, code = 554, enhanced = "5.6.0", text = "Message contains NUL characters; not accepted";
  }
  if (accepting && checker.lineTooLong()) {
    accepting = false;
    body_failed_ = true;
    why = fmt::format("Message has a line longer than {} octets (RFC 5321 section 4.5.3.1.6)",
                      ctx_.config.smtp.max_line_length);
    error = &rejection::kLineTooLong, code = 500, enhanced = "5.5.2", text = why;
  }
  if (!storage_error) {
    replyStorageError(storage_error);
    co_return !quit_;
  }
  if (!accepting) {
    reject(*error, code, enhanced, text);
    co_return !quit_;
  }
  if (!cmd.last) {
    reply(250, "2.0.0", fmt::format("{} octets received", cmd.chunk_size));
    co_return true;
  }
  if (refuseAllOverQuota()) {
    resetTransaction();
    co_return !quit_;
  }
  co_return co_await commitMessage();
}

}  // namespace postern::smtp
