// MAIL (RFC 5321 §4.1.1.2, with RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
// RFC 4954 §5 AUTH=) and RCPT (§4.1.1.3), with the relay and sender policy.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "directory/directory_service.h"
#include "log/log.h"
#include "smtp/proto/address.h"
#include "smtp/server/session.h"
#include "util/strings.h"

namespace postern::smtp {
namespace {

// Lookup form: the whole address lowercased (local parts are treated case-insensitively,
// as Postfix's virtual maps and docker-mailserver do).
std::string canonical(std::string_view path) { return toLower(path); }

}  // namespace

void Session::onMail(const Command& cmd) {
  if (helo_.empty()) return reject("smtp.bad_sequence", 503, "5.5.1", "Send EHLO or HELO first");
  if (in_mail_) return reject("smtp.bad_sequence", 503, "5.5.1", "Nested MAIL command");
  if (authRequired() && user_.empty()) {
    if (!stream_.isTls())
      return reject("smtp.auth_required", 530, "5.7.0", "Must issue a STARTTLS command first, then authenticate");
    return reject("smtp.auth_required", 530, "5.7.0", "Authentication required");
  }
  bool utf8 = false;
  uint64_t size = 0;
  for (size_t i = 0; i < cmd.param_count; ++i) {
    const Param& p = cmd.params[i];
    if (iequals(p.keyword, "SIZE")) {
      auto v = parseDecimal(p.value, UINT64_MAX / 2);
      if (!p.has_value || !v) return reject("smtp.syntax_error", 501, "5.5.4", "Bad SIZE parameter");
      size = *v;
    } else if (iequals(p.keyword, "BODY")) {
      if (!iequals(p.value, "7BIT") && !iequals(p.value, "8BITMIME"))
        return reject("smtp.syntax_error", 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
    } else if (iequals(p.keyword, "SMTPUTF8")) {
      if (p.has_value) return reject("smtp.syntax_error", 501, "5.5.4", "SMTPUTF8 takes no value");
      utf8 = true;
    } else if (iequals(p.keyword, "AUTH")) {
      // RFC 4954 §5: accepted and not trusted; we know who authenticated.
    } else {
      return reject("smtp.syntax_error", 555, "5.5.4", fmt::format("Unsupported MAIL parameter {}", p.keyword));
    }
  }
  if (size > ctx_.config.smtp.max_message_size)
    return reject("smtp.size_exceeded", 552, "5.3.4", "Message size exceeds fixed maximum message size");
  if (!utf8 && hasNonAscii(cmd.path))
    return reject("smtp.utf8_without_smtputf8", 553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");

  dir_ = ctx_.directory.current();
  std::string from = cmd.null_path ? std::string() : canonical(cmd.path);
  if (!user_.empty() && !from.empty() && !dir_->mayUseSender(user_, from)) {
    dir_.reset();
    return reject("smtp.sender_denied", 553, "5.7.1",
                  fmt::format("Sender address <{}> not owned by user {}", cmd.path, user_));
  }
  in_mail_ = true;
  smtputf8_ = utf8;
  declared_size_ = size;
  transaction_start_ = std::chrono::steady_clock::now();
  env_ = spool::Envelope();
  env_.mail_from = cmd.null_path ? std::string() : std::string(cmd.path);
  auto now = std::chrono::system_clock::now();
  env_.accepted_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count());
  env_.pid = static_cast<uint32_t>(::getpid());
  env_.seq = ctx_.next_seq.fetch_add(1, std::memory_order_relaxed);
  env_.queue_id = fmt::format("{:08X}{:05X}{:X}", env_.accepted_us / 1'000'000 & 0xffffffffu,
                              env_.accepted_us % 1'000'000, env_.seq);
  reply(250, "2.1.0", "Ok");
}

void Session::onRcpt(const Command& cmd) {
  if (!in_mail_) return reject("smtp.bad_sequence", 503, "5.5.1", "Need MAIL command first");
  if (bdat_mode_) return reject("smtp.bad_sequence", 503, "5.5.1", "RCPT after BDAT is not allowed");
  ++rcpt_attempts_;
  for (size_t i = 0; i < cmd.param_count; ++i)
    return reject("smtp.syntax_error", 555, "5.5.4",
                  fmt::format("Unsupported RCPT parameter {}", cmd.params[i].keyword));
  if (rcpt_display_.size() >= ctx_.config.smtp.max_recipients) {
    ctx_.counters.inc("smtp.too_many_recipients");
    reply(452, "4.5.3", "Too many recipients");
    return;
  }
  if (!smtputf8_ && hasNonAscii(cmd.path))
    return reject("smtp.utf8_without_smtputf8", 553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");
  std::string rcpt = canonical(cmd.path);
  if (cmd.postmaster) {
    // RFC 5321 §4.1.1.3: <Postmaster> without a domain must be accepted; it goes to
    // postmaster@ our hostname's domain if that exists.
    rcpt = "postmaster@" + canonical(ctx_.config.hostname);
  }
  auto res = dir_->resolve(rcpt);
  using Outcome = directory::Directory::Outcome;
  bool authenticated = !user_.empty();
  if (res.outcome == Outcome::kNotLocal) {
    if (!authenticated)
      return reject("smtp.relay_denied", 554, "5.7.1", fmt::format("<{}>: Relay access denied", cmd.path));
    env_.recipients.push_back({std::string(cmd.path), rcpt, false});
  } else if (res.outcome == Outcome::kUnknownUser) {
    return reject("smtp.unknown_recipient", 550, "5.1.1",
                  fmt::format("<{}>: Recipient address rejected: User unknown", cmd.path));
  } else if (res.outcome == Outcome::kLoop) {
    return reject("smtp.alias_loop", 550, "5.4.6", fmt::format("<{}>: Alias expansion loop", cmd.path));
  } else {
    for (const auto& t : res.targets) {
      bool dup = false;
      for (const auto& r : env_.recipients) dup = dup || r.mailbox == t.address;
      if (!dup) env_.recipients.push_back({std::string(cmd.path), t.address, t.local_mailbox});
    }
  }
  rcpt_display_.emplace_back(cmd.path);
  reply(250, "2.1.5", "Ok");
}

}  // namespace postern::smtp
