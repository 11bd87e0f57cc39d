// An in-memory file system that knows what a crash would keep. Each file remembers the
// bytes its last fsync/fdatasync made durable, each folder the entries its last fsync
// made durable; crash() throws away everything else, as a power failure would (the page
// cache is lost), optionally keeping a random part of unsynced appends (a torn write).
// Tests run the spool and Maildir delivery on it, crash them at any call, and check that
// every acknowledged message survives. No symbolic links; one mutex guards everything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/env.h"

namespace postern::io {

class MemEnv final : public Env {
 public:
  enum class CrashMode : uint8_t {
    kDropUnsynced,   // every unsynced byte and entry is gone
    kTornUnsynced,   // each file keeps a random prefix of its unsynced appends
  };

  MemEnv();
  ~MemEnv() override;

  // Loses what was not made durable and closes every handle (they become invalid).
  void crash(CrashMode mode = CrashMode::kDropUnsynced, uint64_t seed = 0);
  // Test helpers: the current content of a file, or of a folder's entry list.
  Result<std::string> contents(const std::string& path);
  Result<std::vector<std::string>> entries(const std::string& path);
  // Writes a file at once (durably), e.g. to plant damaged segments.
  Status put(const std::string& path, std::string data);
  // Bytes held by all files (current, not durable).
  uint64_t bytesUsed();

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
  struct Node;
  struct Open {
    size_t node;
    unsigned flags;
    uint64_t pos = 0;
  };
  struct Lookup {
    size_t parent = 0;     // folder that holds (or would hold) the last component
    std::string name;      // the last component
    long node = -1;        // -1: missing
  };
  // REQUIRES: mu_ held.
  Result<Lookup> resolve(int dir, const std::string& name);
  Result<size_t> nodeOf(int fd);
  size_t newNode(bool folder);
  void collect();   // REQUIRES: mu_ held
  static constexpr uint64_t kCollectEvery = 64;

  std::mutex mu_;
  std::vector<std::unique_ptr<Node>> nodes_;   // 0 is the root folder
  std::map<int, Open> open_;
  std::map<size_t, int> locks_;                // node -> holding fd
  int next_fd_ = 3;
  uint64_t unlinks_ = 0;
};

}  // namespace postern::io
