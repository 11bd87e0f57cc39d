// Greylisting at RCPT (protect/greylist.h; docs/protection.md "Greylisting"), on the real
// client address. Asked only for a known local recipient, after the relay check.
#include <fmt/format.h>

#include "log/log.h"
#include "protect/greylist.h"
#include "protect/protector.h"
#include "smtp/server/session.h"
#include "util/strings.h"

namespace postern::smtp {

bool Session::greylisted(const Command& cmd, const std::string& rcpt) {
  if (!ctx_.greylist) return false;
  using Outcome = protect::Greylist::Outcome;
  const IpAddress& client = info_.client.address;
  bool exempt = !user_.empty() || ctx_.protector.exempt(client);
  std::string from = toLower(env_.mail_from);
  auto d = ctx_.greylist->check(client, exempt, from, rcpt);
  const std::string shown_from = from.empty() ? "<>" : from;
  switch (d.outcome) {
    case Outcome::kExempt: return false;
    case Outcome::kAutoAllowed: ctx_.counters.inc("greylist.auto_allowed"); return false;
    case Outcome::kPass:
      if (d.first_pass) {
        ctx_.counters.inc("greylist.passed");
        log::info("greylist.passed").kv("conn", info_.id).kv("client", info_.client.toString()).kv("network", d.network)
            .kv("from", shown_from).kv("to", rcpt).kv("delay", formatDurationMs(uint64_t(d.waited) * 1000));
      }
      return false;
    case Outcome::kDefer: break;
  }
  ctx_.counters.inc("greylist.deferred");
  auto ev = log::info("greylist.deferred");
  ev.kv("conn", info_.id).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  ev.kv("network", d.network).kv("from", shown_from).kv("to", rcpt).kv("retry_in", formatDurationMs(uint64_t(d.retry_in) * 1000));
  reply(451, "4.7.1", fmt::format("<{}>: Greylisted; please try again in {} seconds", cmd.path, d.retry_in));
  return true;
}

}  // namespace postern::smtp
