// Reading and editing the accounts and aliases files (formats in accounts.h and
// aliases.h) for `postern account add|del|passwd` and `postern alias add|del`.
//
// An edit takes an advisory lock (flock on "<path>.lock", a file that is created once and
// left in place: locking the data file itself would not survive the rename), reads and
// parses the file, changes only the lines of the entry concerned — every other byte
// (comments, extra fields, order, line endings) stays as it was — re-parses the result,
// and replaces the file atomically (Postfix queue discipline: temp file with O_EXCL,
// fsync, rename, fsync the folder). A symbolic link is followed: the file it points to
// is replaced and the link kept. The daemon may read the file at any moment and sees
// either the old or the new content.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern::directory {

class Directory;

// Larger accounts or aliases files are refused when read.
inline constexpr size_t kMaxDirectoryFileSize = size_t{64} << 20;
// Mode of a file created by an edit (an existing file keeps its mode and owner).
inline constexpr unsigned kNewFileMode = 0640;
// How long an edit waits for another one holding the lock, and how often it retries.
inline constexpr int kLockTimeoutMs = 10000;
inline constexpr int kLockRetryMs = 50;

// The whole file. Status::notFound if it does not exist, Status::io for other failures
// (message "PATH: cannot read: REASON"), Status::invalid if over kMaxDirectoryFileSize.
Result<std::string> readTextFile(const std::string& path);

// Atomically replaces `path` with `content`: writes <path>.tmp.<pid> (O_CREAT|O_EXCL,
// mode and owner of the old file, else `new_mode`), fsyncs it, renames it over `path`,
// fsyncs the folder. On failure the temp file is removed and `path` is unchanged.
// REQUIRES: writers of the same path are serialised (the edit functions below hold the
// lock); a leftover temp file with our pid is taken as stale and removed.
Status writeFileAtomic(const std::string& path, std::string_view content, unsigned new_mode = kNewFileMode);

// Appends "address|{SHA512-CRYPT}..." (address lowercased). Creates the file if missing.
// Status::exists if the address is already there; Status::invalid for a bad address or
// password, for an address that cannot name a mailbox folder (checkMailboxAddress), or if
// the file does not parse (its error is returned).
Status addAccount(const std::string& path, std::string_view address, std::string_view password);
// Removes the account's line. Status::notFound if absent (or the file is missing).
Status deleteAccount(const std::string& path, std::string_view address);
// Replaces the hash of an account with a new SHA512-CRYPT one; the address as written and
// any extra fields stay. Status::notFound if absent; Status::invalid for an address that
// cannot name a mailbox folder (such an account, written by hand, is to be deleted).
Status setPassword(const std::string& path, std::string_view address, std::string_view password);
// Appends "alias target1,target2" (lowercased; `alias` is "a@d" or catch-all "@d";
// targets separated by commas and/or spaces). Creates the file if missing.
// Status::exists if the alias is already there (targets are not merged). A target in a
// local domain (the alias's own domain, or one of `directory`'s if given) that is not an
// alias of `directory` must be able to name a mailbox (checkMailboxAddress);
// Status::invalid otherwise.
Status addAlias(const std::string& path, std::string_view alias, std::string_view targets_csv,
                const Directory* directory = nullptr);
// Removes the alias's line (and its continuation lines). Status::notFound if absent.
Status deleteAlias(const std::string& path, std::string_view alias);

}  // namespace postern::directory
