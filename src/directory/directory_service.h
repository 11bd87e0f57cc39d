// The live directory: the current immutable snapshot, replaced when the accounts,
// aliases or quotas file changes. A file with a bad line keeps the last good snapshot serving and
// the error (file and line) is logged.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "directory/auth_cache.h"
#include "directory/directory.h"
#include "util/file_source.h"
#include "util/fs.h"
#include "util/status.h"

namespace postern::directory {

class DirectoryService {
 public:
  DirectoryService(std::string accounts_path, std::string aliases_path, FileSource& files = directFiles())
      : accounts_path_(std::move(accounts_path)), aliases_path_(std::move(aliases_path)), files_(files) {}

  // Mailbox quotas: the dovecot-quotas.cf at `path` (empty: none; a missing file: none,
  // noted) and the limit of accounts it does not list (0: none). Call before load().
  void setQuotas(std::string path, uint64_t default_bytes) {
    quotas_path_ = std::move(path);
    default_quota_ = default_bytes;
  }
  // The quota of `mailbox` (a lowercased account address) in bytes; 0 means no limit.
  uint64_t quotaFor(std::string_view mailbox) const;

  // First load; an error refuses to start.
  Status load();
  // Reloads when either file changed since the last look (or `force`). Blocking file
  // reads and parsing: call from a worker thread, not the event loop.
  void reloadIfChanged(bool force = false);
  std::shared_ptr<const Directory> current() const;
  AuthCache& authCache() { return auth_cache_; }

 private:
  Status loadNow();

  std::string accounts_path_, aliases_path_;
  FileSource& files_;
  mutable std::mutex mu_;
  std::shared_ptr<const Directory> current_;
  using QuotaMap = std::unordered_map<std::string, uint64_t>;
  std::string quotas_path_;
  uint64_t default_quota_ = 0;
  std::shared_ptr<const QuotaMap> quotas_;   // under mu_; never null after load()
  FileStamp accounts_stamp_, aliases_stamp_, quotas_stamp_;
  std::mutex reload_mu_;   // one reload at a time
  AuthCache auth_cache_;
};

}  // namespace postern::directory
