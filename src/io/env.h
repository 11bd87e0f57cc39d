// The I/O seam: every file operation of the spool and of Maildir delivery goes through an
// Env, so that tests can swap the real file system for one that fails chosen calls
// (ENOSPC, EIO, EDQUOT, short writes) or simulates a crash that drops every byte not yet
// made durable by a sync (io/mem_env.h, io/fault_env.h). The idea is leveldb's Env.
//
// The calls mirror POSIX on purpose: handles are small integers, names are resolved
// relative to a folder handle (kCwd for paths), and each call reports errno in its Status
// (Status::sysErrno). Implementations are thread-safe.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::io {

// Names are resolved against the process's working folder (AT_FDCWD).
inline constexpr int kCwd = -100;

// Flags for openAt, a small portable subset of open(2)'s.
enum OpenFlags : unsigned {
  kRead = 1u << 0,
  kWrite = 1u << 1,        // read-write when kRead is also given
  kCreate = 1u << 2,
  kExclusive = 1u << 3,    // with kCreate: fail with EEXIST when the name exists
  kTruncate = 1u << 4,
  kAppend = 1u << 5,
  kDirectory = 1u << 6,    // fail with ENOTDIR unless the name is a folder
  kNoFollow = 1u << 7,     // fail (ELOOP) when the last component is a symbolic link
};

enum class FileType : uint8_t { kMissing, kFile, kDirectory, kSymlink, kOther };

// The kinds of call, for fault injection and for counting.
enum class Op : uint8_t {
  kOpen, kClose, kWrite, kRead, kSync, kDataSync, kSyncFs, kTruncate, kStat,
  kMkdir, kRename, kLink, kUnlink, kList, kLock,
};
inline constexpr size_t kOpCount = 15;
std::string_view opName(Op op);

class Env {
 public:
  virtual ~Env() = default;

  // open(2)/openat(2). `name` may have several components; with kNoFollow only the last
  // is checked, so callers that must not follow links open one component at a time.
  virtual Result<int> openAt(int dir, const std::string& name, unsigned flags, unsigned mode = 0600) = 0;
  virtual Status close(int fd) = 0;
  // Writes at the end (kAppend) or at the file position. May write less than asked
  // (a short write); the caller goes on with the rest (writeAll does).
  virtual Result<size_t> writev(int fd, const iovec* iov, int count) = 0;
  // Reads up to `n` bytes at `offset`; 0 at end of file.
  virtual Result<size_t> pread(int fd, void* buf, size_t n, uint64_t offset) = 0;
  virtual Status fsync(int fd) = 0;       // data and metadata; on a folder: its entries
  virtual Status fdatasync(int fd) = 0;   // data (and size)
  virtual Status syncfs(int fd) = 0;      // everything on the file system that holds fd
  virtual Status ftruncate(int fd, uint64_t size) = 0;
  virtual Result<uint64_t> fileSize(int fd) = 0;
  // lstat-like: what `name` is, without following a final symbolic link.
  virtual Result<FileType> typeAt(int dir, const std::string& name) = 0;

  virtual Status mkdirAt(int dir, const std::string& name, unsigned mode) = 0;
  virtual Status renameAt(int from_dir, const std::string& from, int to_dir, const std::string& to) = 0;
  virtual Status linkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) = 0;
  virtual Status unlinkAt(int dir, const std::string& name, bool folder = false) = 0;
  // Entry names of an open folder, "." and ".." left out.
  virtual Result<std::vector<std::string>> listDir(int dir) = 0;
  // An exclusive advisory lock on an open file, held until it is closed (flock(2)).
  // Fails with EWOULDBLOCK when another holder has it.
  virtual Status lock(int fd) = 0;
};

// The real file system.
Env& posixEnv();

// Helpers over any Env. Each says what it makes durable.

// Writes every byte (retrying short writes and EINTR).
Status writeAll(Env& env, int fd, std::string_view data);
// Writes the iovecs completely; `iov` is consumed (adjusted in place).
Status writevAll(Env& env, int fd, std::vector<iovec>& iov);
// Reads the whole file at `path`.
Result<std::string> readFile(Env& env, const std::string& path);
// Reads [offset, offset+n) of an open file; a short file is an error.
Status preadAll(Env& env, int fd, char* out, size_t n, uint64_t offset);
// fsync of a folder: makes creations, renames and removals in it durable.
Status fsyncDir(Env& env, const std::string& path);
// mkdir -p; fsyncs each folder it creates and its parent.
Status makeDirs(Env& env, const std::string& path, unsigned mode = 0750);
// Closes on scope exit.
class Fd {
 public:
  Fd() = default;
  Fd(Env& env, int fd) : env_(&env), fd_(fd) {}
  Fd(Fd&& o) noexcept : env_(o.env_), fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();

 private:
  Env* env_ = nullptr;
  int fd_ = -1;
};

}  // namespace postern::io
