// Locked, atomic, line-preserving edits of the accounts and aliases files (see file_edit.h).
#include "directory/file_edit.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

#include "directory/accounts.h"
#include "directory/aliases.h"
#include "directory/directory.h"
#include "directory/mailbox_name.h"
#include "directory/password.h"
#include "util/file_source.h"
#include "util/strings.h"

namespace postern::directory {
namespace {


std::string errnoText(int err) { return std::generic_category().message(err); }

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string folderOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// `path`, or the file it points to if it is a symbolic link (edits replace the target).
Result<std::string> resolveLink(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr)
    return Status::io(path + ": cannot follow the symbolic link: " + errnoText(errno));
  return std::string(resolved);
}

// Holds flock(LOCK_EX) on "<path>.lock" for its lifetime.
Result<Fd> lockFor(const std::string& path) {
  std::string lock_path = path + ".lock";
  Fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kNewFileMode));
  if (!fd.valid()) return Status::io(lock_path + ": cannot open the lock file: " + errnoText(errno));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLockTimeoutMs);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR)
      return Status::io(lock_path + ": cannot lock: " + errnoText(errno));
    if (std::chrono::steady_clock::now() >= deadline)
      return Status::io(path + " is being edited by another process (lock " + lock_path + " held for " +
                        std::to_string(kLockTimeoutMs / 1000) + "s)");
    std::this_thread::sleep_for(std::chrono::milliseconds(kLockRetryMs));
  }
  return fd;
}

Status writeAll(int fd, std::string_view content) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::io(errnoText(errno));
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok();
}

// Physical lines, each with its "\n" if it has one: line N of the parsers is lines[N-1].
std::vector<std::string_view> physicalLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    size_t end = eol == std::string_view::npos ? text.size() : eol + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return lines;
}

// The file's line ending, judged by its first line ("\n" for a new file).
std::string_view lineEnding(std::string_view text) {
  size_t eol = text.find('\n');
  return eol != std::string_view::npos && eol > 0 && text[eol - 1] == '\r' ? "\r\n" : "\n";
}

std::string appendLine(std::string_view text, std::string_view line) {
  std::string_view eol = lineEnding(text);
  std::string out(text);
  if (!out.empty() && out.back() != '\n') out += eol;
  out += line;
  out += eol;
  return out;
}

// `text` without lines first..last (1-based, inclusive).
std::string removeLines(std::string_view text, size_t first, size_t last) {
  std::string out;
  std::vector<std::string_view> lines = physicalLines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i + 1 < first || i + 1 > last) out += lines[i];
  }
  return out;
}

// An address the edit commands write: valid, and not one a reader would take for a comment.
Status checkNewAddress(std::string_view address, Status syntax) {
  if (!syntax) return Status::invalid("invalid address '" + quoteForMessage(address) + "': " + syntax.message());
  if (address.front() == '#')
    return Status::invalid("invalid address '" + quoteForMessage(address) +
                           "': a line starting with '#' would be read as a comment");
  return Status::ok();
}

// An address that would be a mailbox folder (an account, a local alias target) must be
// able to name one.
Status checkNewMailbox(std::string_view address) {
  if (Status st = checkMailboxAddress(address); !st)
    return Status::invalid("invalid address '" + quoteForMessage(address) + "': " + st.message() +
                           ", so it cannot name a mailbox folder (<mailbox root>/<domain>/<local part>)");
  return Status::ok();
}

// The part after the last '@' ("" without one).
std::string_view domainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

// The edit pipeline: lock, read (missing file = "" if `create`), change, write atomically.
// `change` gets the current text and returns the new text; it parses as it needs.
Status editFile(const std::string& path, bool create, const std::function<Result<std::string>(std::string_view)>& change) {
  Result<std::string> real = resolveLink(path);
  if (!real) return real.status();
  Result<Fd> lock = lockFor(*real);
  if (!lock) return lock.status();
  Result<std::string> text = readTextFile(*real);
  if (!text) {
    if (text.status().code() != Status::Code::kNotFound || !create) return text.status();
    text = std::string();
  }
  Result<std::string> updated = change(*text);
  if (!updated) return updated.status();
  return writeFileAtomic(*real, *updated);
}

const Account* findIn(const AccountsFile& file, const std::string& address) {
  for (const Account& account : file.accounts) {
    if (account.address == address) return &account;
  }
  return nullptr;
}

const Alias* findIn(const AliasesFile& file, const std::string& source) {
  for (const Alias& alias : file.aliases) {
    if (alias.source == source) return &alias;
  }
  return nullptr;
}

// The edited accounts text must parse and contain exactly the expected change.
Result<std::string> verifyAccounts(std::string updated, const std::string& path, const std::string& address,
                                   bool present) {
  Result<AccountsFile> check = parseAccounts(updated, path);
  if (!check) return Status::corruption("internal error: the edited file would not parse: " + check.status().message());
  if ((findIn(*check, address) != nullptr) != present)
    return Status::corruption("internal error: the edit of " + address + " did not take effect");
  return updated;
}

Result<std::string> verifyAliases(std::string updated, const std::string& path, const std::string& source,
                                  bool present) {
  Result<AliasesFile> check = parseAliases(updated, path);
  if (!check) return Status::corruption("internal error: the edited file would not parse: " + check.status().message());
  if ((findIn(*check, source) != nullptr) != present)
    return Status::corruption("internal error: the edit of " + source + " did not take effect");
  return updated;
}

std::string location(const std::string& path, size_t line) { return path + ":" + std::to_string(line); }

}  // namespace

Result<std::string> readTextFile(const std::string& path) { return readRegularFile(path, kMaxDirectoryFileSize); }

Status writeFileAtomic(const std::string& path, std::string_view content, unsigned new_mode) {
  mode_t mode = new_mode;
  struct stat old {};
  bool had_old = ::stat(path.c_str(), &old) == 0;
  if (had_old) mode = old.st_mode & 07777;

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  Fd fd(::open(tmp.c_str(), flags, mode));
  if (!fd.valid() && errno == EEXIST) {   // left by a crashed run with our pid (see REQUIRES)
    ::unlink(tmp.c_str());
    fd = Fd(::open(tmp.c_str(), flags, mode));
  }
  if (!fd.valid()) return Status::io(tmp + ": cannot create: " + errnoText(errno));

  auto fail = [&](std::string what) {
    fd.reset();
    ::unlink(tmp.c_str());
    return Status::io(std::move(what));
  };
  // open() applied the umask; the old file's mode (or new_mode) is wanted exactly.
  if (::fchmod(fd.get(), mode) != 0) return fail(tmp + ": cannot set the mode: " + errnoText(errno));
  if (had_old) {
    struct stat now {};
    if (::fstat(fd.get(), &now) != 0) return fail(tmp + ": cannot stat: " + errnoText(errno));
    if ((now.st_uid != old.st_uid || now.st_gid != old.st_gid) && ::fchown(fd.get(), old.st_uid, old.st_gid) != 0)
      return fail(path + ": cannot keep the file's owner " + std::to_string(old.st_uid) + ":" +
                  std::to_string(old.st_gid) + " (" + errnoText(errno) + "): run as the owner or as root");
  }
  if (Status st = writeAll(fd.get(), content); !st) return fail(tmp + ": cannot write: " + st.message());
  if (::fsync(fd.get()) != 0) return fail(tmp + ": cannot fsync: " + errnoText(errno));
  if (::close(fd.release()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::io(tmp + ": cannot close: " + errnoText(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    std::string hint = err == EBUSY || err == EXDEV
                           ? " (is the file itself a mount point? mount its folder instead, so it can be replaced)"
                           : "";
    return Status::io(path + ": cannot replace: " + errnoText(err) + hint);
  }
  std::string folder = folderOf(path);
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid() || ::fsync(dir.get()) != 0)
    return Status::io(folder + ": cannot fsync the folder after replacing " + path + ": " + errnoText(errno));
  return Status::ok();
}

Status addAccount(const std::string& path, std::string_view address, std::string_view password) {
  if (Status st = checkNewAddress(address, checkAddress(address)); !st) return st;
  if (Status st = checkNewMailbox(address); !st) return st;
  std::string key = toLower(address);
  Result<std::string> hash = hashPassword(password);   // before locking: slow
  if (!hash) return hash.status();
  return editFile(path, true, [&](std::string_view text) -> Result<std::string> {
    Result<AccountsFile> file = parseAccounts(text, path);
    if (!file) return file.status();
    if (const Account* existing = findIn(*file, key))
      return Status::exists("account " + key + " already exists (" + location(path, existing->line) + ")");
    return verifyAccounts(appendLine(text, key + "|" + *hash), path, key, true);
  });
}

Status deleteAccount(const std::string& path, std::string_view address) {
  std::string key = toLower(address);
  return editFile(path, false, [&](std::string_view text) -> Result<std::string> {
    Result<AccountsFile> file = parseAccounts(text, path);
    if (!file) return file.status();
    const Account* existing = findIn(*file, key);
    if (existing == nullptr) return Status::notFound("no account " + quoteForMessage(key) + " in " + path);
    return verifyAccounts(removeLines(text, existing->line, existing->line), path, key, false);
  });
}

Status setPassword(const std::string& path, std::string_view address, std::string_view password) {
  // Such an account was added by hand: it can log in but never receive mail. Keeping it
  // alive with a new password would hide that; it is to be deleted.
  if (Status st = checkMailboxAddress(address); !st)
    return Status::invalid("account '" + quoteForMessage(address) + "' cannot have a mailbox: " + st.message() +
                           "; mail to it is refused. Delete it with 'postern account del' and add a valid address");
  std::string key = toLower(address);
  Result<std::string> hash = hashPassword(password);
  if (!hash) return hash.status();
  return editFile(path, false, [&](std::string_view text) -> Result<std::string> {
    Result<AccountsFile> file = parseAccounts(text, path);
    if (!file) return file.status();
    const Account* existing = findIn(*file, key);
    if (existing == nullptr) return Status::notFound("no account " + quoteForMessage(key) + " in " + path);
    std::vector<std::string_view> lines = physicalLines(text);
    std::string_view line = lines[existing->line - 1];
    // The hash field runs from the first '|' (addresses have none) to the next '|' or the
    // line end; the address as written, extra fields and the line ending stay.
    size_t start = line.find('|') + 1;
    size_t end = line.find('|', start);
    if (end == std::string_view::npos) {
      end = line.size();
      if (end > start && line[end - 1] == '\n') --end;
      if (end > start && line[end - 1] == '\r') --end;
    }
    std::string replaced = std::string(line.substr(0, start)) + *hash + std::string(line.substr(end));
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) out += i + 1 == existing->line ? std::string_view(replaced) : lines[i];
    return verifyAccounts(std::move(out), path, key, true);
  });
}

Status addAlias(const std::string& path, std::string_view alias, std::string_view targets_csv,
                const Directory* directory) {
  if (Status st = checkNewAddress(alias, checkAliasSource(alias)); !st) return st;
  std::string key = toLower(alias);
  std::string line = key + " ";
  size_t count = 0;
  for (std::string_view target : splitTargets(targets_csv)) {
    if (Status st = checkNewAddress(target, checkAddress(target)); !st) return st;
    std::string_view domain = domainOf(target);
    bool local = iequals(domain, domainOf(alias)) || (directory != nullptr && directory->isLocalDomain(domain));
    bool is_alias = directory != nullptr && directory->hasAlias(target);
    if (local && !is_alias) {
      if (Status st = checkNewMailbox(target); !st) return st;
    }
    if (count++ > 0) line += ",";
    line += toLower(target);
  }
  if (count == 0) return Status::invalid("alias " + quoteForMessage(key) + ": no targets given");
  return editFile(path, true, [&](std::string_view text) -> Result<std::string> {
    Result<AliasesFile> file = parseAliases(text, path);
    if (!file) return file.status();
    if (const Alias* existing = findIn(*file, key))
      return Status::exists("alias " + key + " already exists (" + location(path, existing->line) + ")");
    return verifyAliases(appendLine(text, line), path, key, true);
  });
}

Status deleteAlias(const std::string& path, std::string_view alias) {
  std::string key = toLower(alias);
  return editFile(path, false, [&](std::string_view text) -> Result<std::string> {
    Result<AliasesFile> file = parseAliases(text, path);
    if (!file) return file.status();
    const Alias* existing = findIn(*file, key);
    if (existing == nullptr) return Status::notFound("no alias " + quoteForMessage(key) + " in " + path);
    size_t last = existing->end_line > existing->line ? existing->end_line : existing->line;
    return verifyAliases(removeLines(text, existing->line, last), path, key, false);
  });
}

}  // namespace postern::directory
