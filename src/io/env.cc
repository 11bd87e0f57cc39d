// The POSIX Env and the helpers shared by every Env.
#include "io/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace postern::io {
namespace {

Status sysError(std::string_view what, std::string_view name) {
  int e = errno;
  return Status::fromErrno(e, fmt::format("{} {}: {}", what, name, std::strerror(e)));
}
Status sysError(std::string_view what, int fd) {
  int e = errno;
  return Status::fromErrno(e, fmt::format("{} (fd {}): {}", what, fd, std::strerror(e)));
}

class PosixEnv final : public Env {
 public:
  Result<int> openAt(int dir, const std::string& name, unsigned flags, unsigned mode) override {
    int f = O_CLOEXEC;
    if ((flags & kRead) && (flags & kWrite)) f |= O_RDWR;
    else if (flags & kWrite) f |= O_WRONLY;
    else f |= O_RDONLY;
    if (flags & kCreate) f |= O_CREAT;
    if (flags & kExclusive) f |= O_EXCL;
    if (flags & kTruncate) f |= O_TRUNC;
    if (flags & kAppend) f |= O_APPEND;
    if (flags & kDirectory) f |= O_DIRECTORY;
    if (flags & kNoFollow) f |= O_NOFOLLOW;
    int fd;
    do fd = ::openat(dir == kCwd ? AT_FDCWD : dir, name.c_str(), f, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return sysError("open", name);
    return fd;
  }
  Status close(int fd) override {
    if (::close(fd) != 0 && errno != EINTR) return sysError("close", fd);
    return Status::ok();
  }
  Result<size_t> writev(int fd, const iovec* iov, int count) override {
    for (;;) {
      ssize_t n = ::writev(fd, iov, std::min(count, IOV_MAX));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return sysError("write", fd);
    }
  }
  Result<size_t> pread(int fd, void* buf, size_t n, uint64_t offset) override {
    for (;;) {
      ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(offset));
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return sysError("read", fd);
    }
  }
  Status fsync(int fd) override { return ::fsync(fd) == 0 ? Status::ok() : sysError("fsync", fd); }
  Status fdatasync(int fd) override { return ::fdatasync(fd) == 0 ? Status::ok() : sysError("fdatasync", fd); }
  Status syncfs(int fd) override { return ::syncfs(fd) == 0 ? Status::ok() : sysError("syncfs", fd); }
  Status ftruncate(int fd, uint64_t size) override {
    return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? Status::ok() : sysError("truncate", fd);
  }
  Result<uint64_t> fileSize(int fd) override {
    struct stat st;
    if (::fstat(fd, &st) != 0) return sysError("stat", fd);
    return static_cast<uint64_t>(st.st_size);
  }
  Result<FileType> typeAt(int dir, const std::string& name) override {
    struct stat st;
    if (::fstatat(dir == kCwd ? AT_FDCWD : dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return FileType::kMissing;
      return sysError("stat", name);
    }
    if (S_ISREG(st.st_mode)) return FileType::kFile;
    if (S_ISDIR(st.st_mode)) return FileType::kDirectory;
    if (S_ISLNK(st.st_mode)) return FileType::kSymlink;
    return FileType::kOther;
  }
  Status mkdirAt(int dir, const std::string& name, unsigned mode) override {
    return ::mkdirat(dir == kCwd ? AT_FDCWD : dir, name.c_str(), mode) == 0 ? Status::ok() : sysError("mkdir", name);
  }
  Status renameAt(int from_dir, const std::string& from, int to_dir, const std::string& to) override {
    if (::renameat(from_dir == kCwd ? AT_FDCWD : from_dir, from.c_str(), to_dir == kCwd ? AT_FDCWD : to_dir,
                   to.c_str()) != 0)
      return sysError("rename", from);
    return Status::ok();
  }
  Status linkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) override {
    if (::linkat(from_dir == kCwd ? AT_FDCWD : from_dir, from.c_str(), to_dir == kCwd ? AT_FDCWD : to_dir, to.c_str(),
                 0) != 0)
      return sysError("link", from);
    return Status::ok();
  }
  Status unlinkAt(int dir, const std::string& name, bool folder) override {
    if (::unlinkat(dir == kCwd ? AT_FDCWD : dir, name.c_str(), folder ? AT_REMOVEDIR : 0) != 0)
      return sysError("unlink", name);
    return Status::ok();
  }
  Result<std::vector<std::string>> listDir(int dir) override {
    // A second handle: readdir owns and closes the one it is given, and moves its offset.
    int fd = ::openat(dir == kCwd ? AT_FDCWD : dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sysError("open folder", dir);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      Status s = sysError("open folder", dir);
      ::close(fd);
      return s;
    }
    std::vector<std::string> out;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") out.emplace_back(n);
    }
    int e = errno;
    ::closedir(d);
    if (e != 0) return Status::fromErrno(e, fmt::format("list folder: {}", std::strerror(e)));
    return out;
  }
  Status lock(int fd) override {
    return ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? Status::ok() : sysError("lock", fd);
  }
};

}  // namespace

std::string_view opName(Op op) {
  static constexpr std::string_view kNames[kOpCount] = {
      "open", "close", "write", "read", "fsync", "fdatasync", "syncfs", "truncate",
      "stat", "mkdir", "rename", "link", "unlink", "list", "lock"};
  return kNames[static_cast<size_t>(op)];
}

Env& posixEnv() {
  static PosixEnv env;
  return env;
}

Status writevAll(Env& env, int fd, std::vector<iovec>& iov) {
  size_t idx = 0;
  while (idx < iov.size()) {
    if (iov[idx].iov_len == 0) {
      ++idx;
      continue;
    }
    auto n = env.writev(fd, &iov[idx], static_cast<int>(iov.size() - idx));
    if (!n) return n.status();
    size_t left = *n;
    if (left == 0) return Status::fromErrno(EIO, "write made no progress");
    while (left > 0 && idx < iov.size()) {
      if (left >= iov[idx].iov_len) {
        left -= iov[idx].iov_len;
        ++idx;
      } else {
        iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
        iov[idx].iov_len -= left;
        left = 0;
      }
    }
  }
  return Status::ok();
}

Status writeAll(Env& env, int fd, std::string_view data) {
  std::vector<iovec> iov{{const_cast<char*>(data.data()), data.size()}};
  return writevAll(env, fd, iov);
}

Status preadAll(Env& env, int fd, char* out, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    auto r = env.pread(fd, out + done, n - done, offset + done);
    if (!r) return r.status();
    if (*r == 0) return Status::fromErrno(EIO, "short read: the file ends early");
    done += *r;
  }
  return Status::ok();
}

Result<std::string> readFile(Env& env, const std::string& path) {
  auto fd = env.openAt(kCwd, path, kRead);
  if (!fd) return fd.status();
  Fd guard(env, *fd);
  // Sized from the file once and read in place (a spool segment is 64 MiB: growing a string
  // through a small buffer copied every byte twice and reallocated on the way).
  constexpr size_t kChunk = 4u << 20;
  auto size = env.fileSize(*fd);
  std::string out;
  out.resize(size ? static_cast<size_t>(*size) : 0);
  size_t have = 0;
  for (;;) {
    if (have == out.size()) out.resize(out.size() + kChunk / 4);   // the file may have grown
    auto n = env.pread(*fd, out.data() + have, std::min(kChunk, out.size() - have), have);
    if (!n) return Status::fromErrno(n.status().sysErrno(), fmt::format("read {}: {}", path, n.status().message()));
    if (*n == 0) break;
    have += *n;
  }
  out.resize(have);
  return out;
}

Status fsyncDir(Env& env, const std::string& path) {
  auto fd = env.openAt(kCwd, path, kRead | kDirectory);
  if (!fd) return fd.status();
  Fd guard(env, *fd);
  return env.fsync(*fd);
}

Status makeDirs(Env& env, const std::string& path, unsigned mode) {
  if (path.empty()) return Status::invalid("empty path");
  auto t = env.typeAt(kCwd, path);
  if (!t) return t.status();
  if (*t == FileType::kDirectory) return Status::ok();
  if (*t != FileType::kMissing) return Status::fromErrno(ENOTDIR, fmt::format("{} exists and is not a folder", path));
  std::string parent;
  if (auto slash = path.rfind('/'); slash == std::string::npos) parent = ".";
  else parent = slash == 0 ? "/" : path.substr(0, slash);
  if (parent != path) {
    if (Status s = makeDirs(env, parent, mode); !s) return s;
  }
  if (Status s = env.mkdirAt(kCwd, path, mode); !s && s.sysErrno() != EEXIST) return s;
  if (Status s = fsyncDir(env, path); !s) return s;
  return fsyncDir(env, parent);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    env_ = o.env_;
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0 && env_) (void)env_->close(fd_);
  fd_ = -1;
}

}  // namespace postern::io
