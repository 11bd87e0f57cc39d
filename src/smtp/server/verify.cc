// Sender authentication in the SMTP session ([verify], docs/configuration.md): SPF on the
// real client address from MAIL FROM on, DKIM/ARC/DMARC on the complete message, one
// Authentication-Results field on top (RFC 8601 §5: fields claiming our authserv-id that the
// message brought along are removed), then milters, then the Junk decision.
#include <fmt/format.h>

#include "auth/verifier.h"
#include "dkim/canon.h"
#include "log/log.h"
#include "smtp/server/session.h"
#include "spool/spool.h"
#include "util/strings.h"
#include "util/time_text.h"

namespace postern::smtp {
namespace {

// RFC 7208 §4.6.4 asks for an overall bound of at least 20 seconds on one check.
constexpr std::chrono::seconds kSpfBackstop{20};
// Capacity kept in front of a message read back from the spool, for the field put on top.
constexpr size_t kResultsRoom = 4096;

unsigned resultBit(auth::SpfResult r) {
  switch (r) {
    case auth::SpfResult::kFail: return unsigned(config::SpfResultSet::kFail);
    case auth::SpfResult::kSoftFail: return unsigned(config::SpfResultSet::kSoftFail);
    case auth::SpfResult::kPermError: return unsigned(config::SpfResultSet::kPermError);
    case auth::SpfResult::kTempError: return unsigned(config::SpfResultSet::kTempError);
    default: return 0;
  }
}

// True when the header section of `message` has a field `name: value` (names compared
// case-insensitively, the unfolded value case-insensitively without surrounding blanks).
bool hasHeaderField(std::string_view message, std::string_view spec) {
  auto colon = spec.find(':');
  std::string_view name = trim(spec.substr(0, colon));
  std::string_view value = trim(spec.substr(colon + 1));
  auto parts = dkim::splitMessage(message);
  if (!parts) return false;
  for (const dkim::HeaderField& f : parts->fields) {
    if (!iequals(f.name, name)) continue;
    std::string v;   // unfolded (RFC 5322 §2.2.3): the CRLFs of continuation lines dropped
    for (char c : f.raw.substr(f.raw.find(':') + 1))
      if (c != '\r' && c != '\n') v += c;
    if (iequals(trim(v), value)) return true;
  }
  return false;
}

}  // namespace

bool Session::verifying() const {
  return ctx_.verifier != nullptr && user_.empty();
}

void Session::startSpf() {
  spf_.reset();
  if (!verifying() || !ctx_.config.verify.spf) return;
  auto ex = stream_.socket().get_executor();
  spf_ = std::make_shared<SpfPending>(ex);
  const int64_t now = static_cast<int64_t>(nowUnixUs() / 1'000'000);
  // Runs on this connection's executor; the pending state outlives the session if need be.
  asio::co_spawn(ex, ctx_.verifier->spf(info_.client.address.unmapped(), helo_, env_.mail_from, now),
                 [p = spf_](std::exception_ptr e, auth::SpfOutcome o) {
                   if (e) {
                     o = auth::SpfOutcome{};
                     o.result = auth::SpfResult::kTempError;
                     o.problem = "internal error";
                   }
                   p->value = std::move(o);
                   p->done = true;
                   p->wake.cancel();
                 });
}

net::awaitable<std::optional<auth::SpfOutcome>> Session::spfOutcome() {
  if (!spf_) co_return std::nullopt;
  std::shared_ptr<SpfPending> p = spf_;
  if (!p->done) {
    p->wake.expires_after(kSpfBackstop);
    co_await p->wake.async_wait(net::use_nothrow);
    if (!p->done) {
      ctx_.counters.inc("verify.spf_timeout");
      auth::SpfOutcome o;
      o.result = auth::SpfResult::kTempError;
      o.problem = "SPF check timed out";
      co_return o;
    }
  }
  co_return p->value;
}

net::awaitable<bool> Session::refusedBySpf() {
  const unsigned refuse = ctx_.config.verify.spf_reject;
  if (!spf_ || refuse == 0) co_return false;
  std::optional<auth::SpfOutcome> o = co_await spfOutcome();
  if (!o || !(resultBit(o->result) & refuse)) co_return false;
  log::info("verify.spf_rejected").kv("conn", info_.id).kv("client", info_.client.toString())
      .kv("from", env_.mail_from).kv("spf", auth::spfResultName(o->result)).kv("domain", o->domain)
      .opt("problem", o->problem);
  // RFC 7372 §3.2: X.7.23 "SPF validation failed", X.7.24 "SPF validation error".
  switch (o->result) {
    case auth::SpfResult::kTempError:
      reject(rejection::kSpf, 451, "4.7.24", fmt::format("SPF check of {} failed temporarily; try again later", o->domain));
      break;
    case auth::SpfResult::kPermError:
      reject(rejection::kSpf, 550, "5.7.24", fmt::format("SPF record of {} is invalid: {}", o->domain, o->problem));
      break;
    default: {
      std::string why = o->explanation.empty()
                            ? fmt::format("SPF {} for {}: [{}] is not allowed to send its mail", auth::spfResultName(o->result),
                                          o->domain, info_.client.address.toString())
                            : o->explanation;
      reject(rejection::kSpf, 550, "5.7.23", why);
    }
  }
  co_return true;
}

net::awaitable<bool> Session::prepareMessage() {
  const config::Verify& vc = ctx_.config.verify;
  const bool verify = verifying();
  const bool filter = !ctx_.config.milters.empty();
  verify_summary_.clear();
  whole_ = false;
  if (!verify && !filter && vc.junk_header.empty()) co_return true;
  if (spilled_) {
    // The start of the message is in the spool already: read it back (off the event loop).
    // The lambda is named and captures only `this` (env_ is not touched meanwhile): g++ 12
    // mishandles non-trivial captures of a temporary inside a co_await expression.
    auto read = [this] { return ctx_.spool.readChunks(env_.queue_id); };
    Result<std::string> chunks = co_await net::offload(ctx_.cpu_pool, std::move(read));
    if (!chunks) {
      log::error("smtp.spool_failed").kv("conn", info_.id).kv("queue_id", env_.queue_id)
          .kv("reason", chunks.status().message());
      ctx_.counters.inc("smtp.spool_failed");
      replyStorageError(chunks.status());
      co_return false;
    }
    // Room for the Authentication-Results field, so that it goes on top without a copy.
    chunks.value().reserve(chunks.value().size() + body_.size() + kResultsRoom);
    chunks.value() += body_;
    body_ = std::move(chunks.value());
    whole_ = true;
  }
  if (verify) {
    // Lent to the verifier and taken back afterwards: the field then goes on top in place
    // (a copy only if a task of the verifier still holds the message).
    auto message = std::make_shared<std::string>(std::move(body_));
    auth::VerifyRequest req;
    req.ip = info_.client.address.unmapped();
    req.helo = helo_;
    req.mail_from = env_.mail_from;
    req.message = message;
    req.now = static_cast<int64_t>(nowUnixUs() / 1'000'000);
    std::optional<auth::SpfOutcome> spf = co_await spfOutcome();
    auth::Report report = co_await ctx_.verifier->verify(std::move(req), std::move(spf));
    ctx_.counters.inc("verify.checked");
    const std::string field = ctx_.verifier->header(report);
    if (message.use_count() == 1) {
      auth::putResults(*message, vc.authserv_id, field);
      body_ = std::move(*message);
    } else {
      body_ = auth::withResults(*message, vc.authserv_id, field);
    }
    message.reset();
    // For the smtp.accepted line.
    std::string dkim = report.dkim.empty() ? std::string("none") : std::string();
    for (const auto& d : report.dkim) {
      if (!dkim.empty()) dkim += ',';
      dkim += auth::dkimResultName(d.result);
    }
    if (report.spf_checked) verify_summary_ += fmt::format("spf={} ", auth::spfResultName(report.spf.result));
    if (report.dkim_checked) verify_summary_ += fmt::format("dkim={} ", dkim);
    if (report.dmarc_checked) verify_summary_ += fmt::format("dmarc={} ", auth::dmarcResultName(report.dmarc.result));
    if (report.arc_checked) verify_summary_ += fmt::format("arc={} ", auth::arcResultName(report.arc.result));
    if (!verify_summary_.empty()) verify_summary_.pop_back();
    if (vc.dmarc_enforce && report.dmarc.result == auth::DmarcResult::kFail) {
      if (report.dmarc.disposition == auth::DmarcPolicy::kReject) {
        log::info("verify.dmarc_rejected").kv("conn", info_.id).kv("client", info_.client.toString())
            .kv("queue_id", env_.queue_id).kv("from", env_.mail_from).kv("header_from", report.dmarc.header_from)
            .kv("verify", verify_summary_);
        reject(rejection::kDmarc, 550, "5.7.1",
               fmt::format("Rejected by the DMARC policy of {}", report.dmarc.header_from));
        co_return false;
      }
      if (report.dmarc.disposition == auth::DmarcPolicy::kQuarantine) {
        ctx_.counters.inc("verify.dmarc_quarantined");
        env_.flags |= spool::kJunk;
      }
    }
  }
  if (filter && !co_await milterMessage(body_)) co_return false;
  if (!vc.junk_header.empty() && hasHeaderField(body_, vc.junk_header)) env_.flags |= spool::kJunk;
  if (env_.flags & spool::kJunk) ctx_.counters.inc("verify.junk");
  body_size_ = body_.size();
  co_return true;
}

}  // namespace postern::smtp
