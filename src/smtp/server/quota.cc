// Mailbox quotas at RCPT (issue 13): refuse a recipient whose mailbox is full, or would
// be by the size declared with MAIL FROM SIZE= (RFC 1870), with 452 4.2.2 (RFC 3463
// "mailbox full", temporary as Dovecot's LMTP and Postfix answer it: space may be freed).
// At the end of DATA, a message that fits none of its recipients' mailboxes is refused with
// 552 5.2.2 (RFC 1870 section 6.2's answer for a message that exceeds the storage of its
// recipient); one that fits some of them is accepted, and the deliverer bounces the rest
// (5.2.2), as it does for anything that stops fitting between here and delivery.
#include <fmt/format.h>

#include "delivery/quota_usage.h"
#include "directory/directory_service.h"
#include "log/log.h"
#include "smtp/server/session.h"

namespace postern::smtp {

bool Session::refuseOverQuota(const Command& cmd, const directory::Directory::Resolution& res) {
  if (ctx_.quota_usage == nullptr) return false;
  for (const auto& t : res.targets) {
    if (!t.local_mailbox) continue;
    uint64_t limit = ctx_.directory.quotaFor(t.address);
    if (limit == 0) continue;
    uint64_t used = ctx_.quota_usage->usage(t.address);
    if (used < limit && used + declared_size_ <= limit) continue;
    log::info("smtp.over_quota").kv("conn", info_.id).kv("to", t.address).kv("usage", used).kv("quota", limit)
        .kv("size", declared_size_);
    reject(rejection::kOverQuota, 452, "4.2.2", fmt::format("<{}>: Mailbox full", cmd.path));
    return true;
  }
  return false;
}

bool Session::refuseAllOverQuota() {
  if (ctx_.quota_usage == nullptr || env_.recipients.empty()) return false;
  for (const auto& r : env_.recipients) {
    if (!r.local) return false;
    uint64_t limit = ctx_.directory.quotaFor(r.mailbox);
    if (limit == 0 || ctx_.quota_usage->usage(r.mailbox) + body_size_ <= limit) return false;
  }
  log::info("smtp.over_quota").kv("conn", info_.id).kv("recipients", uint64_t(env_.recipients.size()))
      .kv("size", body_size_).kv("stage", "data");
  reject(rejection::kOverQuotaData, 552, "5.2.2", "Mailbox full: the message exceeds the quota of every recipient");
  return true;
}

}  // namespace postern::smtp
