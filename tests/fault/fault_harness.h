// A spool + queue + Maildir deliverer on the in-memory file system, driven by committer
// threads like SMTP sessions, with faults injected through io::FaultEnv and crashes that
// drop every unsynced byte (io::MemEnv::crash). It records which messages were
// acknowledged (commit callback ok = the 250) and checks after recovery that each one was
// delivered exactly once with its exact bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "delivery/deliverer.h"
#include "io/fault_env.h"
#include "io/mem_env.h"
#include "queue/queue.h"
#include "spool/spool.h"

namespace postern::fault {

inline constexpr char kSpoolDir[] = "/data/spool";
inline constexpr char kMailRoot[] = "/mail";
inline constexpr char kMailbox[] = "user@example.test";
inline constexpr char kRemote[] = "far@remote.test";

struct Message {
  uint64_t id;
  std::string body;     // CRLF, as the session hands it to the spool
  bool chunked;         // first part sent with appendChunk
  bool remote;          // a second, remote recipient (never delivered: keeps it queued)
};

// One process lifetime: spool, queue and deliverer over `env`.
class Life {
 public:
  Life(io::Env& env, spool::SpoolOptions options);
  ~Life();   // stops in the server's order
  bool ok() const { return spool_ != nullptr; }
  const Status& openStatus() const { return open_status_; }
  // Commits one message; true when acknowledged (the 250).
  bool commit(const Message& m);
  spool::Spool& spool() { return *spool_; }
  queue::Queue& queue() { return *queue_; }
  std::vector<spool::Pending>& recovered() { return pending_; }

 private:
  Status open_status_;
  std::vector<spool::Pending> pending_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<delivery::Deliverer> deliverer_;
  std::atomic<uint64_t> seq_{1};
};

struct CheckResult {
  std::vector<uint64_t> lost;        // acknowledged, not delivered (nor still queued for local)
  std::vector<uint64_t> doubled;     // delivered more than once
  std::vector<uint64_t> wrong;       // delivered with other bytes
  std::vector<uint64_t> remote_lost; // acknowledged with a remote recipient no longer queued
  size_t delivered = 0;
  bool clean() const { return lost.empty() && doubled.empty() && wrong.empty() && remote_lost.empty(); }
  std::string describe() const;
};

class Harness {
 public:
  explicit Harness(spool::SpoolOptions options = smallSegments());
  static spool::SpoolOptions smallSegments();

  io::MemEnv& mem() { return mem_; }
  io::FaultEnv& faults() { return *fault_; }
  // Starts a life on a fresh FaultEnv (no rules).
  Life& start();
  // Commits `count` messages from `threads` committer threads; returns how many were acked.
  size_t load(size_t count, unsigned threads, uint64_t seed);
  // Simulated power failure: the process dies at once (every later call fails), then every
  // byte no sync covered is lost.
  void crash(io::MemEnv::CrashMode mode = io::MemEnv::CrashMode::kDropUnsynced, uint64_t seed = 0);
  // Ends the life cleanly (no crash).
  void stop();
  // Starts a clean life, lets delivery finish, checks every acknowledged message.
  CheckResult recoverAndCheck();
  const std::map<uint64_t, Message>& acked() const { return acked_; }
  Message makeMessage(uint64_t id, uint64_t seed) const;

 private:
  spool::SpoolOptions options_;
  io::MemEnv mem_;
  std::unique_ptr<io::FaultEnv> fault_;
  std::unique_ptr<Life> life_;
  std::mutex mu_;
  std::map<uint64_t, Message> acked_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace postern::fault
