#include "directory/directory_service.h"

#include <sys/stat.h>

#include "directory/quotas.h"
#include "log/log.h"

namespace postern::directory {

Status DirectoryService::loadNow() {
  FileStamp a = files_.stamp(accounts_path_), b = files_.stamp(aliases_path_);
  FileStamp q = quotas_path_.empty() ? FileStamp() : files_.stamp(quotas_path_);
  std::vector<std::string> notes;
  auto d = loadDirectory(accounts_path_, aliases_path_, &notes, files_);
  if (!d) return d.status();
  auto quotas = std::make_shared<QuotaMap>();
  if (!quotas_path_.empty()) {
    Result<std::string> text = files_.read(quotas_path_);
    if (text) {
      Result<QuotasFile> parsed = parseQuotas(*text, quotas_path_);
      if (!parsed) return parsed.status();
      for (auto& e : parsed->entries) quotas->emplace(std::move(e.address), e.bytes);
    } else if (text.status().code() == Status::Code::kNotFound) {
      notes.push_back(quotas_path_ + ": note: the quotas file does not exist: only default_quota applies");
    } else {
      return text.status();
    }
  }
  for (const auto& n : notes) log::info("directory.note").kv("message", n);
  // Kept loaded (one hand-edited line must not stop all mail), refused at RCPT.
  for (const auto& e : mailboxNameErrors(**d, accounts_path_, aliases_path_))
    log::warn("directory.bad_mailbox_name").kv("message", e);
  std::lock_guard lock(mu_);
  current_ = *d;
  quotas_ = std::move(quotas);
  accounts_stamp_ = a;
  aliases_stamp_ = b;
  quotas_stamp_ = q;
  return Status::ok();
}

Status DirectoryService::load() {
  std::lock_guard lock(reload_mu_);
  return loadNow();
}

void DirectoryService::reloadIfChanged(bool force) {
  std::lock_guard lock(reload_mu_);
  FileStamp a = files_.stamp(accounts_path_), b = files_.stamp(aliases_path_);
  FileStamp q = quotas_path_.empty() ? FileStamp() : files_.stamp(quotas_path_);
  {
    std::lock_guard l(mu_);
    if (!force && a == accounts_stamp_ && b == aliases_stamp_ && q == quotas_stamp_) return;
  }
  Status s = loadNow();
  if (!s) {
    // Keep serving the last good data; remember the stamps so the error is logged once.
    log::error("directory.reload_failed").kv("reason", s.message()).kv("status", "kept_previous");
    std::lock_guard l(mu_);
    accounts_stamp_ = a;
    aliases_stamp_ = b;
    quotas_stamp_ = q;
    return;
  }
  auto d = current();
  size_t quotas = 0;
  {
    std::lock_guard l(mu_);
    quotas = quotas_->size();
  }
  log::info("directory.reloaded").kv("accounts", uint64_t(d->accountCount())).kv("aliases", uint64_t(d->aliasCount()))
      .kv("quotas", uint64_t(quotas));
}

uint64_t DirectoryService::quotaFor(std::string_view mailbox) const {
  std::shared_ptr<const QuotaMap> quotas;
  {
    std::lock_guard lock(mu_);
    quotas = quotas_;
  }
  if (quotas) {
    auto it = quotas->find(std::string(mailbox));
    if (it != quotas->end()) return it->second;
  }
  return default_quota_;
}

std::shared_ptr<const Directory> DirectoryService::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace postern::directory
