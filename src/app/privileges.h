// Giving up root. `postern serve` started as root binds its listeners, starts the
// privileged reader, hands its folders to the service user and then becomes that user for
// good: every parser, TLS handshake and Maildir write runs without root.
//
// The privileged reader is the one part that stays root: a forked process that holds no
// listening socket and answers exactly two questions about the files the configuration
// names (certificates, keys, accounts, aliases) — their contents and their stat() — so
// that a certbot renewal (a new root-owned 0600 key renamed into a root-only folder) keeps
// being loaded the way Postfix and Dovecot load it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/file_source.h"
#include "util/status.h"

namespace postern::app {

struct Identity {
  std::string user, group;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The identity `[server] user`/`group` name. Errors name the missing user or group and
// how to create it.
Result<Identity> lookupIdentity(const config::Server& s);

// setgroups({gid}), setresgid, setresuid, then reads them back (real, effective and saved
// ids, the supplementary groups) and checks that root cannot be regained.
Status dropPrivileges(const Identity& id);

struct OwnershipChange {
  uint64_t changed = 0;
  uint64_t skipped = 0;   // regular files with more than one link: never handed over
};
// Hands `root` and what lies under it to `id`, without following symbolic links (they are
// left alone) and without descending past `max_depth` levels (0: `root` only). With
// `dirs_only`, only folders change owner. Paths under `exclude` are skipped. A regular
// file with several hard links is skipped: it may be a link to a file outside.
Result<OwnershipChange> takeOwnership(const std::string& root, const Identity& id, int max_depth, bool dirs_only,
                                      const std::string& exclude = "");

// The forked reader (see above). Requests are serialised; a reader that has gone away
// makes reads fall back to the process's own rights, logged once.
class PrivilegedReader final : public FileSource {
 public:
  // Forks the reader; only `allowed` paths (compared as written) are ever read.
  static Result<std::unique_ptr<PrivilegedReader>> start(std::vector<std::string> allowed);
  ~PrivilegedReader() override;
  PrivilegedReader(const PrivilegedReader&) = delete;
  PrivilegedReader& operator=(const PrivilegedReader&) = delete;

  Result<std::string> read(const std::string& path) override;
  FileStamp stamp(const std::string& path) override;
  pid_t pid() const { return pid_; }

 private:
  PrivilegedReader(int fd, pid_t pid, std::set<std::string> allowed)
      : fd_(fd), pid_(pid), allowed_(std::move(allowed)) {}
  // One request and its reply; false when the reader is unreachable.
  bool ask(char op, const std::string& path, char& status, std::string& payload);
  void gone(const std::string& why);

  std::mutex mu_;
  int fd_;
  pid_t pid_;
  std::set<std::string> allowed_;
  bool dead_ = false;
};

}  // namespace postern::app
