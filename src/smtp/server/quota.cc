// Mailbox quotas at RCPT (issue 13): refuse a recipient whose mailbox is full, or would
// be by the size declared with MAIL FROM SIZE= (RFC 1870), with 452 4.2.2 (RFC 3463
// "mailbox full", temporary as Dovecot's LMTP and Postfix answer it: space may be freed).
// A message that passes here and still does not fit is bounced by the deliverer (5.2.2).
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

}  // namespace postern::smtp
