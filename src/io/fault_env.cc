#include "io/fault_env.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace postern::io {

void FaultEnv::failNth(Op op, uint64_t nth, Fault fault) {
  std::lock_guard lock(mu_);
  rules_.push_back({op, counts_[static_cast<size_t>(op)] + nth, fault});
}

void FaultEnv::failAll(Op op, int err) {
  std::lock_guard lock(mu_);
  fail_all_[static_cast<size_t>(op)] = err;
}

void FaultEnv::crashAtCall(uint64_t nth) {
  std::lock_guard lock(mu_);
  crash_at_ = total_ + nth;
}

void FaultEnv::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
  fail_all_.fill(0);
  crash_at_ = 0;
}

uint64_t FaultEnv::calls(Op op) {
  std::lock_guard lock(mu_);
  return counts_[static_cast<size_t>(op)];
}

uint64_t FaultEnv::totalCalls() {
  std::lock_guard lock(mu_);
  return total_;
}

FaultEnv::Fault FaultEnv::check(Op op) {
  std::lock_guard lock(mu_);
  if (crashed_) return {Kind::kErrno, EIO};
  uint64_t n = ++counts_[static_cast<size_t>(op)];
  ++total_;
  if (crash_at_ != 0 && total_ >= crash_at_) {
    crashed_ = true;
    ++injected_;
    return {Kind::kErrno, EIO};
  }
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->op == op && it->at == n) {
      Fault f = it->fault;
      rules_.erase(it);
      ++injected_;
      if (f.kind == Kind::kCrash) {
        crashed_ = true;
        return {Kind::kErrno, EIO};
      }
      return f;
    }
  }
  if (int e = fail_all_[static_cast<size_t>(op)]; e != 0) {
    ++injected_;
    return {Kind::kErrno, e};
  }
  return {Kind::kErrno, 0};
}

namespace {
Status injected(Op op, int e) {
  return Status::fromErrno(e, fmt::format("{} (injected): {}", opName(op), std::strerror(e)));
}
}  // namespace

// Each call: count it, fail it if a rule says so, else pass it on.
#define POSTERN_FAULT_CHECK(OP)                                       \
  do {                                                                \
    Fault f_ = check(OP);                                             \
    if (f_.kind == Kind::kErrno && f_.err != 0) return injected(OP, f_.err); \
  } while (0)

Result<int> FaultEnv::openAt(int dir, const std::string& name, unsigned flags, unsigned mode) {
  POSTERN_FAULT_CHECK(Op::kOpen);
  return base_.openAt(dir, name, flags, mode);
}
Status FaultEnv::close(int fd) {
  // A close after a crash still releases the base handle: the process is gone, its
  // handles with it (nothing is written by a close).
  Fault f = check(Op::kClose);
  Status s = base_.close(fd);
  if (f.kind == Kind::kErrno && f.err != 0) return injected(Op::kClose, f.err);
  return s;
}
Result<size_t> FaultEnv::writev(int fd, const iovec* iov, int count) {
  Fault f = check(Op::kWrite);
  if (f.kind == Kind::kErrno && f.err != 0) return injected(Op::kWrite, f.err);
  if (f.kind == Kind::kShortWrite) {
    // Half of the first non-empty buffer (at least one byte) really reaches the file.
    for (int i = 0; i < count; ++i) {
      if (iov[i].iov_len == 0) continue;
      iovec part{iov[i].iov_base, std::max<size_t>(1, iov[i].iov_len / 2)};
      return base_.writev(fd, &part, 1);
    }
  }
  return base_.writev(fd, iov, count);
}
Result<size_t> FaultEnv::pread(int fd, void* buf, size_t n, uint64_t offset) {
  POSTERN_FAULT_CHECK(Op::kRead);
  return base_.pread(fd, buf, n, offset);
}
Status FaultEnv::fsync(int fd) {
  POSTERN_FAULT_CHECK(Op::kSync);
  return base_.fsync(fd);
}
Status FaultEnv::fdatasync(int fd) {
  POSTERN_FAULT_CHECK(Op::kDataSync);
  return base_.fdatasync(fd);
}
Status FaultEnv::syncfs(int fd) {
  POSTERN_FAULT_CHECK(Op::kSyncFs);
  return base_.syncfs(fd);
}
Status FaultEnv::ftruncate(int fd, uint64_t size) {
  POSTERN_FAULT_CHECK(Op::kTruncate);
  return base_.ftruncate(fd, size);
}
Result<uint64_t> FaultEnv::fileSize(int fd) {
  POSTERN_FAULT_CHECK(Op::kStat);
  return base_.fileSize(fd);
}
Result<FileType> FaultEnv::typeAt(int dir, const std::string& name) {
  POSTERN_FAULT_CHECK(Op::kStat);
  return base_.typeAt(dir, name);
}
Status FaultEnv::mkdirAt(int dir, const std::string& name, unsigned mode) {
  POSTERN_FAULT_CHECK(Op::kMkdir);
  return base_.mkdirAt(dir, name, mode);
}
Status FaultEnv::renameAt(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  POSTERN_FAULT_CHECK(Op::kRename);
  return base_.renameAt(from_dir, from, to_dir, to);
}
Status FaultEnv::linkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  POSTERN_FAULT_CHECK(Op::kLink);
  return base_.linkAt(from_dir, from, to_dir, to);
}
Status FaultEnv::unlinkAt(int dir, const std::string& name, bool folder) {
  POSTERN_FAULT_CHECK(Op::kUnlink);
  return base_.unlinkAt(dir, name, folder);
}
Result<std::vector<std::string>> FaultEnv::listDir(int dir) {
  POSTERN_FAULT_CHECK(Op::kList);
  return base_.listDir(dir);
}
Status FaultEnv::lock(int fd) {
  POSTERN_FAULT_CHECK(Op::kLock);
  return base_.lock(fd);
}

#undef POSTERN_FAULT_CHECK

}  // namespace postern::io
