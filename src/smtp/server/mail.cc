// MAIL (RFC 5321 §4.1.1.2, with RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
// RFC 4954 §5 AUTH=, RFC 3461 §4.3/§4.4 RET= and ENVID=) and RCPT (§4.1.1.3, with RFC 3461
// §4.1/§4.2 NOTIFY= and ORCPT=), with the relay and sender policy.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <chrono>

#include "delivery/srs.h"
#include "directory/directory_service.h"
#include "directory/mailbox_name.h"
#include "log/log.h"
#include "metrics/server_metrics.h"
#include "protect/protector.h"
#include "smtp/proto/address.h"
#include "smtp/server/session.h"
#include "util/strings.h"

namespace postern::smtp {
namespace {

constexpr char kRecipientDelimiter = '+';

// Lookup form: the whole address lowercased (local parts are treated case-insensitively,
// as Postfix's virtual maps and docker-mailserver do).
std::string canonical(std::string_view path) { return toLower(path); }

}  // namespace

void Session::onMail(const Command& cmd) {
  if (helo_.empty()) return reject(rejection::kBadSequence, 503, "5.5.1", "Send EHLO or HELO first");
  if (in_mail_) return reject(rejection::kBadSequence, 503, "5.5.1", "Nested MAIL command");
  if (authRequired() && user_.empty()) {
    if (!stream_.isTls())
      return reject(rejection::kAuthRequired, 530, "5.7.0", "Must issue a STARTTLS command first, then authenticate");
    return reject(rejection::kAuthRequired, 530, "5.7.0", "Authentication required");
  }
  // The parser has checked every parameter's syntax (SIZE, BODY, SMTPUTF8, AUTH, RET, ENVID).
  bool utf8 = cmd.smtputf8;
  uint64_t size = cmd.has_size ? cmd.size : 0;
  if (size > ctx_.config.smtp.max_message_size)
    return reject(rejection::kSizeExceeded, 552, "5.3.4", "Message size exceeds fixed maximum message size");
  if (!utf8 && hasNonAscii(cmd.path))
    return reject(rejection::kUtf8WithoutSmtputf8, 553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");

  dir_ = ctx_.directory.current();
  std::string from = cmd.null_path ? std::string() : canonical(cmd.path);
  if (!user_.empty() && !from.empty() && !dir_->mayUseSender(user_, from)) {
    dir_.reset();
    return reject(rejection::kSenderDenied, 553, "5.7.1",
                  fmt::format("Sender address <{}> not owned by user {}", cmd.path, user_));
  }
  if (!user_.empty() && !ctx_.protector.allowMessage(user_)) {
    dir_.reset();
    ctx_.counters.inc("smtp.user_message_limit");
    log::warn("protect.user_limit").kv("conn", info_.id).kv("user", user_).kv("limit", "messages_per_hour")
        .kv("max", uint64_t(ctx_.config.protect.max_messages_per_user));
    reply(451, "4.7.1", fmt::format("Too many messages from {} in the last hour; try again later", user_));
    return;
  }
  in_mail_ = true;
  smtputf8_ = utf8;
  declared_size_ = size;
  transaction_start_ = std::chrono::steady_clock::now();
  env_ = spool::newEnvelope(ctx_.next_seq.fetch_add(1, std::memory_order_relaxed));
  env_.mail_from = cmd.null_path ? std::string() : std::string(cmd.path);
  env_.ret = cmd.ret == DsnRetParam::kFull   ? spool::DsnRet::kFull
             : cmd.ret == DsnRetParam::kHdrs ? spool::DsnRet::kHdrs
                                             : spool::DsnRet::kUnset;
  if (!cmd.envid.empty()) env_.envid = decodeXtext(cmd.envid).value_or(std::string());
  startSpf();   // runs while the client sends RCPT (verify.cc)
  reply(250, "2.1.0", "Ok");
}

void Session::startDnsbl() {
  // Only inbound mail from the internet: the smtp listener, clients not in allow_networks.
  // Authenticated senders are exempt when the verdict is used.
  if (!ctx_.dnsbl || info_.listener->service->service != config::Service::kSmtp) return;
  if (ctx_.protector.exempt(info_.client.address)) return;
  dnsbl_ = std::make_shared<DnsblPending>(stream_.socket().get_executor());
  ctx_.dnsbl->check(info_.client.address, [p = dnsbl_, ex = stream_.socket().get_executor(),
                                           &m = ctx_.metrics](protect::DnsblVerdict v) {
    m.dnsblLookups(!v.listed.empty()).inc();
    m.dnsblHits().inc(v.listed.size());
    asio::post(ex, [p, v = std::move(v)]() mutable {
      p->value = std::move(v);
      p->done = true;
      p->wake.cancel();
    });
  });
}

net::awaitable<std::optional<protect::DnsblVerdict>> Session::dnsblVerdict() {
  if (!dnsbl_) co_return std::nullopt;
  if (!dnsbl_->done) {
    // The lookup has its own deadline (timeout) and always answers; this is a backstop.
    dnsbl_->wake.expires_after(std::chrono::milliseconds(ctx_.config.protect.dnsbl.timeout_ms) + kDnsblBackstop);
    co_await dnsbl_->wake.async_wait(net::use_nothrow);
    if (!dnsbl_->done) co_return std::nullopt;
  }
  co_return dnsbl_->value;
}

net::awaitable<void> Session::onRcpt(const Command& cmd) {
  if (!in_mail_) co_return reject(rejection::kBadSequence, 503, "5.5.1", "Need MAIL command first");
  if (bdat_mode_) co_return reject(rejection::kBadSequence, 503, "5.5.1", "RCPT after BDAT is not allowed");
  if (user_.empty()) {
    if (auto v = co_await dnsblVerdict(); v && v->reject) {
      ctx_.counters.inc("smtp.dnsbl_rejected");
      log::info("dnsbl.rejected").kv("conn", info_.id).kv("client", info_.client.toString()).kv("zone", v->zone)
          .kv("listed", fmt::format("{}", fmt::join(v->listed, ","))).kv("score", int64_t(v->score));
      co_return reject(rejection::kDnsbl, 554, "5.7.1",
                       fmt::format("Service unavailable; client [{}] blocked using {}",
                                   info_.client.address.toString(), v->zone));
    }
  }
  if (co_await refusedBySpf()) co_return;
  co_return onRcptChecked(cmd);
}

// A local recipient whose mail would go to a mailbox that cannot be a folder is refused
// now, rather than accepted and then never delivered (issue 11). That is a local mailbox
// target whose address fails checkMailboxAddress (an account written by hand), or, when no
// safe mailbox takes the mail, the recipient's own local part (unquoted: "../../x"@d names
// ../../x). True when a reply was sent.
bool Session::refuseBadMailboxName(const Command& cmd, const std::string& rcpt,
                                   const directory::Directory::Resolution& res) {
  using Outcome = directory::Directory::Outcome;
  const std::string* bad_target = nullptr;
  for (const auto& t : res.targets) {
    if (!t.local_mailbox) continue;
    if (Status st = directory::checkMailboxAddress(t.address); !st) {
      log::warn("directory.bad_mailbox_name").kv("conn", info_.id).kv("recipient", rcpt).kv("mailbox", t.address)
          .kv("reason", st.message());
      bad_target = &t.address;
      break;
    }
  }
  if (res.outcome != Outcome::kUnknownUser && bad_target == nullptr) return false;
  if (!cmd.postmaster) {
    std::string own = unquotedLocalPart(cmd.mailbox) + "@" + std::string(cmd.mailbox.domain);
    if (Status st = directory::checkMailboxAddress(own); !st) {
      reject(rejection::kBadMailboxName, 550, "5.1.3",
             fmt::format("<{}>: Bad recipient address syntax: {}", cmd.path, st.message()));
      return true;
    }
  }
  if (bad_target == nullptr) return false;   // unknown: 5.1.1 below
  reject(rejection::kBadMailboxTarget, 550, "5.1.3", fmt::format("<{}>: Bad destination mailbox address syntax", cmd.path));
  return true;
}

bool Session::srsRecipient(const Command& cmd, const std::string& orcpt) {
  using delivery::SrsError;
  auto days = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count() / delivery::kSrsSecondsPerDay;
  auto r = ctx_.srs->reverse(cmd.path, static_cast<uint64_t>(days));
  if (!r.value) {
    if (r.error == SrsError::kNotSrs) return false;
    const Rejection& why = r.error == SrsError::kBadHash   ? rejection::kSrsBadHash
                           : r.error == SrsError::kExpired ? rejection::kSrsExpired
                                                           : rejection::kSrsMalformed;
    reject(why, 550, "5.1.1", fmt::format("<{}>: Recipient address rejected: {}", cmd.path, r.reason));
    return true;
  }
  // The original sender (SRS0) or the first forwarder's SRS0 address (SRS1): normally
  // remote; should it be one of ours after all, it goes where the directory says.
  const std::string& original = r.value->address;
  auto res = dir_->resolve(canonical(original));
  using Outcome = directory::Directory::Outcome;
  if (res.outcome != Outcome::kNotLocal && res.outcome != Outcome::kDeliver) {
    reject(rejection::kUnknownRecipient, 550, "5.1.1",
           fmt::format("<{}>: Recipient address rejected: its original address is unknown here", cmd.path));
    return true;
  }
  ctx_.counters.inc("srs.reversed");
  log::info("srs.reversed").kv("conn", info_.id).kv("to", cmd.path).kv("original", original)
      .kv("kind", r.value->kind == delivery::SrsLocal::Kind::kSrs0 ? "SRS0" : "SRS1");
  if (res.outcome == Outcome::kNotLocal) {
    env_.recipients.push_back({std::string(cmd.path), original, false, cmd.notify, orcpt});
  } else {
    for (const auto& t : res.targets) {
      bool dup = false;
      for (const auto& e : env_.recipients) dup = dup || e.mailbox == t.address;
      if (!dup) env_.recipients.push_back({std::string(cmd.path), t.address, t.local_mailbox, cmd.notify, orcpt});
    }
  }
  rcpt_display_.emplace_back(cmd.path);
  reply(250, "2.1.5", "Ok");
  return true;
}

void Session::onRcptChecked(const Command& cmd) {
  ++rcpt_attempts_;
  // The parser accepts only NOTIFY and ORCPT (RFC 3461 §4.1, §4.2), syntax checked.
  static_assert(kDsnNotifyNever == spool::kNotifyNever && kDsnNotifySuccess == spool::kNotifySuccess &&
                kDsnNotifyFailure == spool::kNotifyFailure && kDsnNotifyDelay == spool::kNotifyDelay);
  std::string orcpt = cmd.orcpt.empty() ? std::string() : decodeOrcpt(cmd.orcpt).value_or(std::string());
  if (rcpt_display_.size() >= ctx_.config.smtp.max_recipients) {
    ctx_.counters.inc("smtp.too_many_recipients");
    reply(452, "4.5.3", "Too many recipients");
    return;
  }
  if (!smtputf8_ && hasNonAscii(cmd.path))
    return reject(rejection::kUtf8WithoutSmtputf8, 553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");
  if (!user_.empty() && !ctx_.protector.allowRecipient(user_)) {
    ctx_.counters.inc("smtp.user_recipient_limit");
    log::warn("protect.user_limit").kv("conn", info_.id).kv("user", user_).kv("limit", "recipients_per_hour")
        .kv("max", uint64_t(ctx_.config.protect.max_recipients_per_user));
    reply(451, "4.7.1", fmt::format("Too many recipients from {} in the last hour; try again later", user_));
    return;
  }
  std::string rcpt = canonical(cmd.path);
  if (cmd.postmaster) {
    // RFC 5321 §4.1.1.3: <Postmaster> without a domain must be accepted; it goes to
    // postmaster@ our hostname's domain if that exists.
    rcpt = "postmaster@" + canonical(ctx_.config.hostname);
  }
  // Bounces to our SRS addresses come from anywhere, without AUTH: before relay checks.
  if (ctx_.srs && !cmd.postmaster && srsRecipient(cmd, orcpt)) return;
  auto res = dir_->resolve(rcpt);
  using Outcome = directory::Directory::Outcome;
  if (res.outcome == Outcome::kUnknownUser) {
    // Sub-addressing (user+tag@domain, docker-mailserver's recipient_delimiter "+"):
    // an address unknown as written is delivered to user@domain if that exists.
    size_t at = rcpt.rfind('@');
    size_t plus = rcpt.find(kRecipientDelimiter);
    if (plus != std::string::npos && at != std::string::npos && plus > 0 && plus < at)
      if (auto base = dir_->resolve(rcpt.substr(0, plus) + rcpt.substr(at)); base.outcome == Outcome::kDeliver)
        res = std::move(base);
  }
  if (res.outcome != Outcome::kNotLocal && refuseBadMailboxName(cmd, rcpt, res)) return;
  bool authenticated = !user_.empty();
  if (res.outcome == Outcome::kNotLocal) {
    if (!authenticated)
      return reject(rejection::kRelayDenied, 554, "5.7.1", fmt::format("<{}>: Relay access denied", cmd.path));
    env_.recipients.push_back({std::string(cmd.path), rcpt, false, cmd.notify, orcpt});
  } else if (res.outcome == Outcome::kUnknownUser) {
    return reject(rejection::kUnknownRecipient, 550, "5.1.1",
                  fmt::format("<{}>: Recipient address rejected: User unknown", cmd.path));
  } else if (res.outcome == Outcome::kLoop) {
    return reject(rejection::kAliasLoop, 550, "5.4.6", fmt::format("<{}>: Alias expansion loop", cmd.path));
  } else if (greylisted(cmd, rcpt)) {
    return;   // after the relay and recipient checks: an unknown user still gets 550
  } else {
    if (refuseOverQuota(cmd, res)) return;
    for (const auto& t : res.targets) {
      bool dup = false;
      for (const auto& r : env_.recipients) dup = dup || r.mailbox == t.address;
      if (!dup) env_.recipients.push_back({std::string(cmd.path), t.address, t.local_mailbox, cmd.notify, orcpt});
    }
  }
  rcpt_display_.emplace_back(cmd.path);
  reply(250, "2.1.5", "Ok");
}

}  // namespace postern::smtp
