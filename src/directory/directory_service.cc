#include "directory/directory_service.h"

#include <sys/stat.h>

#include "log/log.h"

namespace postern::directory {

Status DirectoryService::loadNow() {
  FileStamp a = files_.stamp(accounts_path_), b = files_.stamp(aliases_path_);
  std::vector<std::string> notes;
  auto d = loadDirectory(accounts_path_, aliases_path_, &notes, files_);
  if (!d) return d.status();
  for (const auto& n : notes) log::info("directory.note").kv("message", n);
  // Kept loaded (one hand-edited line must not stop all mail), refused at RCPT.
  for (const auto& e : mailboxNameErrors(**d, accounts_path_, aliases_path_))
    log::warn("directory.bad_mailbox_name").kv("message", e);
  std::lock_guard lock(mu_);
  current_ = *d;
  accounts_stamp_ = a;
  aliases_stamp_ = b;
  return Status::ok();
}

Status DirectoryService::load() {
  std::lock_guard lock(reload_mu_);
  return loadNow();
}

void DirectoryService::reloadIfChanged(bool force) {
  std::lock_guard lock(reload_mu_);
  FileStamp a = files_.stamp(accounts_path_), b = files_.stamp(aliases_path_);
  {
    std::lock_guard l(mu_);
    if (!force && a == accounts_stamp_ && b == aliases_stamp_) return;
  }
  Status s = loadNow();
  if (!s) {
    // Keep serving the last good data; remember the stamps so the error is logged once.
    log::error("directory.reload_failed").kv("reason", s.message()).kv("status", "kept_previous");
    std::lock_guard l(mu_);
    accounts_stamp_ = a;
    aliases_stamp_ = b;
    return;
  }
  auto d = current();
  log::info("directory.reloaded").kv("accounts", uint64_t(d->accountCount())).kv("aliases", uint64_t(d->aliasCount()));
}

std::shared_ptr<const Directory> DirectoryService::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace postern::directory
