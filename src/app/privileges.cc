#include "app/privileges.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "log/log.h"

namespace postern::app {
namespace {

constexpr int kReaderTimeoutMs = 10000;
constexpr size_t kMaxPathLength = 4096;

std::string errnoText(int e) { return std::strerror(e); }

// Reads exactly n bytes; false on EOF, error or (when timeout_ms >= 0) a silent peer.
bool readExact(int fd, void* buf, size_t n, int timeout_ms) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    if (timeout_ms >= 0) {
      pollfd pfd{fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
    }
    ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool writeExact(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Wire format (both ends are this binary on this machine, so native byte order):
//   request: op ('R' read, 'S' stat), u32 path length, path
//   reply:   status ('+' done, '-' refused or failed, 'N' not found), u64 length, payload
// A read's payload is the file; a stat's is a FileStamp; a failure's is the message.
bool reply(int fd, char status, const std::string& payload) {
  uint64_t len = payload.size();
  return writeExact(fd, &status, 1) && writeExact(fd, &len, sizeof len) && writeExact(fd, payload.data(), payload.size());
}

[[noreturn]] void readerMain(int fd, const std::set<std::string>& allowed) {
  for (;;) {
    char op;
    uint32_t len;
    if (!readExact(fd, &op, 1, -1) || !readExact(fd, &len, sizeof len, -1) || len > kMaxPathLength) ::_exit(0);
    std::string path(len, '\0');
    if (!readExact(fd, path.data(), len, -1)) ::_exit(0);
    bool ok;
    if (!allowed.count(path)) {
      ok = reply(fd, '-', path + ": not a file named in the configuration");
    } else if (op == 'R') {
      auto r = readRegularFile(path);
      if (r) ok = reply(fd, '+', *r);
      else ok = reply(fd, r.status().code() == Status::Code::kNotFound ? 'N' : '-', r.status().message());
      if (r) explicit_bzero(r->data(), r->size());
    } else if (op == 'S') {
      FileStamp st = fileStamp(path);
      ok = reply(fd, '+', std::string(reinterpret_cast<const char*>(&st), sizeof st));
    } else {
      ok = reply(fd, '-', "unknown request");
    }
    if (!ok) ::_exit(0);
  }
}

// The reader keeps root's uid (certbot's files are root's) but of root's powers only
// CAP_DAC_READ_SEARCH (to read a key another user owns, e.g. acme.sh's); it never executes
// anything, and no_new_privs closes that door for good.
bool keepOnlyReadCapability() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = 1u << CAP_DAC_READ_SEARCH;
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

Result<Identity> lookupIdentity(const config::Server& s) {
  Identity id;
  id.user = s.user;
  errno = 0;
  const passwd* pw = ::getpwnam(s.user.c_str());
  if (!pw)
    return Status::notFound(fmt::format(
        "[server] user '{}' does not exist{}: create it (useradd --system --user-group --home-dir /var/lib/postern "
        "--shell /usr/sbin/nologin {}; scripts/install-deps does) or name another user",
        s.user, errno ? " (" + errnoText(errno) + ")" : "", s.user));
  id.uid = pw->pw_uid;
  id.gid = pw->pw_gid;
  if (s.group.empty()) {
    const group* gr = ::getgrgid(id.gid);
    id.group = gr ? gr->gr_name : std::to_string(id.gid);
  } else {
    const group* gr = ::getgrnam(s.group.c_str());
    if (!gr) return Status::notFound(fmt::format("[server] group '{}' does not exist", s.group));
    id.group = s.group;
    id.gid = gr->gr_gid;
  }
  return id;
}

Status dropPrivileges(const Identity& id) {
  if (::setgroups(1, &id.gid) != 0) return Status::io("setgroups: " + errnoText(errno));
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return Status::io("setresgid: " + errnoText(errno));
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return Status::io("setresuid: " + errnoText(errno));
  // Read everything back: a partial change is refused, not served.
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (::getresuid(&ru, &eu, &su) != 0 || ::getresgid(&rg, &eg, &sg) != 0)
    return Status::io("getresuid/getresgid: " + errnoText(errno));
  if (ru != id.uid || eu != id.uid || su != id.uid)
    return Status::io(fmt::format("user ids are {}/{}/{} after the change, not {}", ru, eu, su, id.uid));
  if (rg != id.gid || eg != id.gid || sg != id.gid)
    return Status::io(fmt::format("group ids are {}/{}/{} after the change, not {}", rg, eg, sg, id.gid));
  gid_t groups[2];
  int n = ::getgroups(2, groups);
  if (n < 0 || n > 1 || (n == 1 && groups[0] != id.gid))
    return Status::io("supplementary groups remain after the change");
  if (id.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) return Status::io("root could be regained after the change");
  return Status::ok();
}

namespace {

struct Walk {
  const Identity& id;
  int max_depth;
  bool dirs_only;
  std::string exclude;
  OwnershipChange result;
};

Status walkAt(Walk& w, int dir_fd, const std::string& path, int depth) {
  DIR* d = ::fdopendir(::dup(dir_fd));
  if (!d) return Status::io(fmt::format("{}: cannot list: {}", path, errnoText(errno)));
  Status status = Status::ok();
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string child = path + "/" + name;
    if (!w.exclude.empty() && child == w.exclude) continue;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;   // gone meanwhile
    bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode)) continue;   // symlinks, sockets, FIFOs: left alone
    if (!is_dir && w.dirs_only) continue;
    if (!is_dir && st.st_nlink > 1) {
      ++w.result.skipped;
      continue;
    }
    if (st.st_uid != w.id.uid || st.st_gid != w.id.gid) {
      if (::fchownat(dir_fd, name.c_str(), w.id.uid, w.id.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        status = Status::io(fmt::format("{}: cannot change owner: {}", child, errnoText(errno)));
        break;
      }
      ++w.result.changed;
    }
    if (is_dir && depth < w.max_depth) {
      int sub = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;   // replaced by a symlink meanwhile: not followed
      status = walkAt(w, sub, child, depth + 1);
      ::close(sub);
      if (!status) break;
    }
  }
  ::closedir(d);
  return status;
}

}  // namespace

Result<OwnershipChange> takeOwnership(const std::string& root, const Identity& id, int max_depth, bool dirs_only,
                                      const std::string& exclude) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::io(fmt::format("{}: cannot open: {}", root, errnoText(errno)));
  Walk w{id, max_depth, dirs_only, exclude, {}};
  struct stat st;
  Status s = Status::ok();
  if (::fstat(fd, &st) != 0) {
    s = Status::io(fmt::format("{}: cannot stat: {}", root, errnoText(errno)));
  } else if (st.st_uid != id.uid || st.st_gid != id.gid) {
    if (::fchown(fd, id.uid, id.gid) != 0) s = Status::io(fmt::format("{}: cannot change owner: {}", root, errnoText(errno)));
    else ++w.result.changed;
  }
  if (s && max_depth > 0) s = walkAt(w, fd, root, 1);
  ::close(fd);
  if (!s) return s;
  return w.result;
}

Result<std::unique_ptr<PrivilegedReader>> PrivilegedReader::start(std::vector<std::string> allowed) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Status::io("socketpair: " + errnoText(errno));
  std::set<std::string> allow(allowed.begin(), allowed.end());
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return Status::io("fork: " + errnoText(e));
  }
  if (pid == 0) {
    // The reader: no logging (the logger's thread was not copied), only plain system calls.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    ::prctl(PR_SET_NAME, "postern-reader");
    // The daemon's handlers write to its signal pipe, which is closed below: back to the
    // defaults, except ^C from a terminal and SIGHUP, which the daemon handles (and then
    // closes our socket, which ends us).
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Keep nothing of the daemon's: no listener, no spool file, no log file.
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull < 0 || ::dup2(sv[1], 3) < 0) ::_exit(1);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::close_range(4, ~0U, 0);
    if (!keepOnlyReadCapability()) ::_exit(1);
    readerMain(3, allow);
  }
  ::close(sv[1]);
  return std::unique_ptr<PrivilegedReader>(new PrivilegedReader(sv[0], pid, std::move(allow)));
}

PrivilegedReader::~PrivilegedReader() {
  ::close(fd_);   // the reader sees end-of-file and exits
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void PrivilegedReader::gone(const std::string& why) {
  if (dead_) return;
  dead_ = true;
  log::error("privileges.reader_gone").kv("reason", why)
      .kv("fallback", "files are read with the service user's rights");
}

bool PrivilegedReader::ask(char op, const std::string& path, char& status, std::string& payload) {
  if (dead_) return false;
  uint32_t len = static_cast<uint32_t>(path.size());
  if (!writeExact(fd_, &op, 1) || !writeExact(fd_, &len, sizeof len) || !writeExact(fd_, path.data(), path.size())) {
    gone("cannot send: " + errnoText(errno));
    return false;
  }
  uint64_t n;
  if (!readExact(fd_, &status, 1, kReaderTimeoutMs) || !readExact(fd_, &n, sizeof n, kReaderTimeoutMs) ||
      n > kMaxSourceFileSize) {
    gone("no answer");
    return false;
  }
  payload.assign(n, '\0');
  if (!readExact(fd_, payload.data(), n, kReaderTimeoutMs)) {
    gone("answer cut short");
    return false;
  }
  return true;
}

Result<std::string> PrivilegedReader::read(const std::string& path) {
  if (!allowed_.count(path)) return readRegularFile(path);
  std::lock_guard lock(mu_);
  char status;
  std::string payload;
  if (!ask('R', path, status, payload)) return readRegularFile(path);
  if (status == '+') return payload;
  if (status == 'N') return Status::notFound(std::move(payload));
  return Status::io(std::move(payload));
}

FileStamp PrivilegedReader::stamp(const std::string& path) {
  if (!allowed_.count(path)) return fileStamp(path);
  std::lock_guard lock(mu_);
  char status;
  std::string payload;
  if (!ask('S', path, status, payload) || status != '+' || payload.size() != sizeof(FileStamp)) return fileStamp(path);
  FileStamp st;
  std::memcpy(&st, payload.data(), sizeof st);
  return st;
}

}  // namespace postern::app
