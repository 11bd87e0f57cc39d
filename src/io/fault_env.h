// An Env that passes calls to another one and fails chosen ones: the Nth call of a kind
// with an errno (ENOSPC, EIO, EDQUOT), a short write, or a crash. From a crash on, every
// call fails with EIO and nothing reaches the base Env, so the test can then call
// MemEnv::crash() and reopen: what the "dead" process did after that point never counts.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "io/env.h"

namespace postern::io {

class FaultEnv final : public Env {
 public:
  enum class Kind : uint8_t { kErrno, kShortWrite, kCrash };
  struct Fault {
    Kind kind = Kind::kErrno;
    int err = 0;   // kErrno
  };

  explicit FaultEnv(Env& base) : base_(base) {}

  // The `nth` call (1-based, counted from now) of `op` gets `fault`.
  void failNth(Op op, uint64_t nth, Fault fault);
  // Every call of `op` fails with `err` until clear() (a full disk, a dead device).
  void failAll(Op op, int err);
  // The `nth` call of any kind (counted from now) crashes.
  void crashAtCall(uint64_t nth);
  void clear();     // forgets every rule (not a crash)
  bool crashed() const { return crashed_.load(); }
  uint64_t calls(Op op);
  uint64_t totalCalls();
  uint64_t faultsInjected() const { return injected_.load(); }

  Result<int> openAt(int dir, const std::string& name, unsigned flags, unsigned mode = 0600) override;
  Status close(int fd) override;
  Result<size_t> writev(int fd, const iovec* iov, int count) override;
  Result<size_t> pread(int fd, void* buf, size_t n, uint64_t offset) override;
  Status fsync(int fd) override;
  Status fdatasync(int fd) override;
  Status syncfs(int fd) override;
  Status ftruncate(int fd, uint64_t size) override;
  Result<uint64_t> fileSize(int fd) override;
  Result<FileType> typeAt(int dir, const std::string& name) override;
  Status mkdirAt(int dir, const std::string& name, unsigned mode) override;
  Status renameAt(int from_dir, const std::string& from, int to_dir, const std::string& to) override;
  Status linkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) override;
  Status unlinkAt(int dir, const std::string& name, bool folder) override;
  Result<std::vector<std::string>> listDir(int dir) override;
  Status lock(int fd) override;

 private:
  struct Rule {
    Op op;
    uint64_t at;     // the call count of `op` that triggers it
    Fault fault;
  };
  // Counts the call; returns the fault to apply, if any (kErrno with err 0: none).
  Fault check(Op op);

  Env& base_;
  std::mutex mu_;
  std::array<uint64_t, kOpCount> counts_{};
  uint64_t total_ = 0;
  uint64_t crash_at_ = 0;   // 0: none
  std::vector<Rule> rules_;
  std::array<int, kOpCount> fail_all_{};
  std::atomic<bool> crashed_{false};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace postern::io
