// The session's side of [[milter]] (milter/client.h): one client per connection and
// applicable filter, driven at connect, HELO, MAIL, RCPT and end of message. A filter's
// reject or tempfail becomes the reply to that command (the filter's own "y" text when it
// gave one); at end of message its header/body edits are applied to the message before it
// is committed, quarantine sends it to Junk, discard accepts it and drops it. A filter that
// fails gives its default_action (accept: skipped; tempfail: 451 4.7.1), logged once.
#include <fmt/format.h>

#include "log/log.h"
#include "milter/client.h"
#include "smtp/server/session.h"

namespace postern::smtp {
namespace {

using Action = milter::Decision::Action;

bool applies(const config::Milter& m, const config::Listener& l) {
  if (m.services.empty()) return true;   // every SMTP listener
  for (const auto& s : m.services)
    if (s == l.name || s == l.service->name) return true;
  return false;
}

}  // namespace

bool Session::repliedOk(size_t mark) const { return out_.size() > mark && out_.compare(mark, 1, "2") == 0; }

void Session::milterLog(const milter::Client& c, std::string_view stage, const milter::Decision& d) {
  const std::string& name = c.config().name;
  if (d.unavailable) {
    if (d.failure.empty()) return;   // logged when it failed
    ctx_.counters.inc("milter.unavailable");
    log::warn("milter.unavailable").kv("conn", info_.id).kv("milter", name).kv("stage", stage)
        .kv("reason", d.failure)
        .kv("action", c.config().default_action == config::MilterDefault::kAccept ? "accept" : "tempfail");
    return;
  }
  std::string_view event;
  switch (d.action) {
    case Action::kContinue:
    case Action::kAccept: return;
    case Action::kReject:
      ctx_.counters.inc("milter.reject");
      event = "milter.reject";
      break;
    case Action::kTempFail:
      ctx_.counters.inc("milter.tempfail");
      event = "milter.tempfail";
      break;
    case Action::kDiscard:
      ctx_.counters.inc("milter.discard");
      event = "milter.discard";
      break;
  }
  auto ev = log::info(event);
  ev.kv("conn", info_.id).kv("milter", name).kv("stage", stage);
  if (!env_.queue_id.empty()) ev.kv("queue_id", env_.queue_id);
  if (d.code != 0) ev.kv("reply", fmt::format("{} {} {}", d.code, d.enhanced, d.text));
}

void Session::milterRefuse(const milter::Decision& d, bool message) {
  if (d.action == Action::kReject) {
    reply(d.code >= 500 ? d.code : message ? 554 : 550, d.enhanced.empty() ? "5.7.1" : d.enhanced,
          !d.text.empty() ? d.text : message ? "Message content rejected" : "Command rejected");
  } else {
    reply(d.code >= 400 && d.code < 500 ? d.code : 451, d.enhanced.empty() ? "4.7.1" : d.enhanced,
          !d.text.empty() ? d.text : "Service temporarily unavailable, try again later");
  }
}

net::awaitable<void> Session::milterConnect() {
  const config::Listener& l = *info_.listener;
  for (const auto& m : ctx_.config.milters)
    if (applies(m, l)) milters_.push_back(std::make_unique<milter::Client>(stream_.socket().get_executor(), m));
  if (milters_.empty()) co_return;
  milter::ConnectInfo ci;
  ci.client_ip = info_.client.address.unmapped();   // the real client, after a PROXY header
  ci.client_port = info_.client.port;
  ci.client_hostname = fmt::format("[{}]", ci.client_ip.toString());   // no verified PTR name here
  ci.our_hostname = ctx_.config.hostname;
  ci.tls = stream_.isTls();
  for (auto& c : milters_) {
    milter::Decision d = co_await c->open();
    if (!d.unavailable) d = co_await c->connect(ci);
    milterLog(*c, "connect", d);
    if ((d.action == Action::kReject || d.action == Action::kTempFail) && !milter_connect_reply_)
      milter_connect_reply_ = d;
  }
}

void Session::milterSessionChanged() {
  std::string tls = stream_.isTls() ? stream_.tlsInfo().version : std::string();
  for (auto& c : milters_) c->setSession(user_, tls);
}

net::awaitable<void> Session::milterHelo(size_t mark) {
  for (auto& c : milters_) {
    milter::Decision d = co_await c->helo(helo_);
    milterLog(*c, "helo", d);
    // A filter that is down answers MAIL with its default action, not HELO.
    if (!d.unavailable && (d.action == Action::kReject || d.action == Action::kTempFail)) {
      out_.resize(mark);
      helo_.clear();
      milterRefuse(d, false);
      co_return;
    }
  }
}

net::awaitable<void> Session::milterMail(const Command& cmd, size_t mark) {
  auto refuse = [&](const milter::Decision& d) {
    out_.resize(mark);
    resetTransaction();
    milterRefuse(d, false);
  };
  if (milter_connect_reply_) {
    refuse(*milter_connect_reply_);
    co_return;
  }
  milterSessionChanged();
  std::vector<std::string> args;
  for (size_t i = 0; i < cmd.param_count; ++i) {
    const auto& p = cmd.params[i];
    args.push_back(p.has_value ? fmt::format("{}={}", p.keyword, p.value) : std::string(p.keyword));
  }
  std::string from(cmd.path);
  for (auto& c : milters_) {
    milter::Decision d = co_await c->mail(from, args, env_.queue_id);
    milterLog(*c, "mail", d);
    if (d.action == Action::kReject || d.action == Action::kTempFail) {
      co_await c->abort();
      for (auto& other : milters_) co_await other->abort();
      refuse(d);
      co_return;
    }
    if (d.action == Action::kDiscard) milter_discard_ = true;
  }
}

net::awaitable<void> Session::milterRcpt(const Command& cmd, size_t mark, size_t recipients, size_t displayed) {
  std::vector<std::string> args;
  for (size_t i = 0; i < cmd.param_count; ++i) {
    const auto& p = cmd.params[i];
    args.push_back(p.has_value ? fmt::format("{}={}", p.keyword, p.value) : std::string(p.keyword));
  }
  std::string to(cmd.path);
  for (auto& c : milters_) {
    milter::Decision d = co_await c->rcpt(to, args);
    milterLog(*c, "rcpt", d);
    if (d.action == Action::kReject || d.action == Action::kTempFail) {
      // This recipient only: the ones before it stay.
      out_.resize(mark);
      env_.recipients.resize(recipients);
      rcpt_display_.resize(displayed);
      milterRefuse(d, false);
      co_return;
    }
    if (d.action == Action::kDiscard) milter_discard_ = true;
  }
}

net::awaitable<void> Session::milterAbort() {
  milter_discard_ = false;
  for (auto& c : milters_) co_await c->abort();
}

net::awaitable<void> Session::milterQuit() {
  for (auto& c : milters_) co_await c->quit();
  milters_.clear();
}

net::awaitable<bool> Session::milterMessage(std::string& message) {
  if (milters_.empty()) co_return true;
  bool discard = milter_discard_;
  milter_discard_ = false;
  auto msg = std::make_shared<std::string>(std::move(message));
  for (auto& c : milters_) {
    if (discard) {
      co_await c->abort();
      continue;
    }
    milter::Modifications mods;
    std::shared_ptr<const std::string> view = msg;
    milter::Decision d = co_await c->message(view, &mods);
    milterLog(*c, "eom", d);
    if (d.action == Action::kReject || d.action == Action::kTempFail) {
      for (auto& other : milters_) co_await other->abort();
      milterRefuse(d, true);
      co_return false;
    }
    if (d.action == Action::kDiscard) {
      discard = true;
      continue;
    }
    if (!mods.add_rcpt.empty() || !mods.delete_rcpt.empty() || mods.change_from)
      log::info("milter.envelope_change_ignored").kv("conn", info_.id).kv("milter", c->config().name)
          .kv("queue_id", env_.queue_id).kv("add_rcpt", uint64_t(mods.add_rcpt.size()))
          .kv("delete_rcpt", uint64_t(mods.delete_rcpt.size())).kv("change_from", mods.change_from.has_value());
    if (mods.quarantine) {
      env_.flags |= spool::kJunk;
      ctx_.counters.inc("milter.quarantine");
      log::info("milter.quarantine").kv("conn", info_.id).kv("milter", c->config().name).kv("stage", "eom")
          .kv("queue_id", env_.queue_id).kv("reply", *mods.quarantine);
    }
    if (!mods.headers.empty() || mods.body) *msg = milter::applyModifications(*msg, mods);
  }
  message = std::move(*msg);
  if (discard) {
    log::info("smtp.accepted").kv("conn", info_.id).kv("listener", info_.listener->name)
        .kv("client", info_.client.toString()).kv("queue_id", env_.queue_id).kv("from", env_.mail_from)
        .kv("size", uint64_t(message.size())).kv("status", "discarded");
    reply(250, "2.0.0", fmt::format("Ok: queued as {}", env_.queue_id));
    co_return false;
  }
  co_return true;
}

}  // namespace postern::smtp
