// Durable acceptance with group commit. Messages from all connections are appended to
// one segment file by a single writer thread; a batch of commits shares one fdatasync,
// and no commit is acknowledged before that fdatasync returns. Record format: record.h.
//
// Batches form by themselves while the previous fdatasync runs. On top of that a batch may
// wait a short commit window for more commits (PostgreSQL's commit_delay idea): only when
// the previous batch held two or more commits, i.e. when other sessions are committing
// too, so a lone client never waits. The window closes as soon as as many commits are
// queued as the previous batch held (capped by `commit_batch`), or after `commit_wait`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "spool/record.h"
#include "util/status.h"

namespace postern::spool {

inline constexpr uint64_t kSegmentTargetSize = 64ull * 1024 * 1024;

// A committed message not yet delivered to every recipient (found at start-up).
struct Pending {
  Envelope env;
  std::vector<bool> done;   // per recipient
};

struct SpoolStats {
  uint64_t commits = 0;
  uint64_t syncs = 0;       // fdatasync calls; commits/syncs is the group-commit factor
  uint64_t bytes = 0;
  uint64_t segments_deleted = 0;
  uint64_t windows = 0;     // batches that waited for the commit window
};

struct SpoolOptions {
  std::chrono::microseconds commit_wait{1000};   // 0: no window, natural batching only
  size_t commit_batch = 128;                      // commits that close the window early
};

class Spool {
 public:
  using Callback = std::function<void(Status)>;

  // Opens (creating if needed) `dir`, recovers existing segments and returns the
  // messages still owed delivery. Blocking: call before serving.
  static Result<std::unique_ptr<Spool>> open(const std::string& dir, std::vector<Pending>* pending,
                                             SpoolOptions options = {});
  ~Spool();

  // Appends a body chunk of a transaction in progress (no fsync). `cb` runs on the writer
  // thread once the bytes are written.
  void appendChunk(const std::string& queue_id, std::string data, Callback cb);
  // Accepts the message: durable once `cb` is called with ok (after fdatasync).
  void commit(Envelope env, std::shared_ptr<const std::string> tail, Callback cb);
  // Forgets a transaction's chunks (client aborted, limits exceeded).
  void abort(const std::string& queue_id);
  // Records final outcomes; once every recipient is done the message's space is reclaimed.
  void markDone(const std::string& queue_id, std::vector<uint32_t> recipients);
  // The whole body of a committed message. Blocking (pread); call from a disk thread.
  Result<std::string> readBody(const std::string& queue_id);
  // Blocks until everything queued so far is written and synced.
  void drain();
  SpoolStats stats();
  size_t liveMessages();

 private:
  struct Extent {
    uint64_t segment;
    uint64_t offset;   // of the data within the segment file
    uint64_t length;
  };
  struct Live {
    std::vector<Extent> extents;  // chunks then tail
    bool committed = false;
    std::vector<bool> done;
    size_t remaining = 0;
  };
  struct Op {
    enum Kind { kChunk, kCommit, kAbort, kDone, kBarrier } kind = kBarrier;
    std::string queue_id;
    std::string data;                                // chunk data
    std::shared_ptr<const std::string> tail;         // commit
    Envelope env;                                    // commit
    std::vector<uint32_t> recipients;                // done
    Callback cb;
  };
  struct Segment {
    int fd = -1;
    uint64_t size = 0;
    size_t live = 0;     // messages with extents here that are not finished
    bool damaged = false;  // a bad record was found in it at recovery
  };

  Spool(std::string dir, SpoolOptions options);
  Status recover(std::vector<Pending>* pending);
  Status openNewSegment();
  void writerLoop();
  void enqueue(Op op);
  void processBatch(std::deque<Op>& batch);
  void release(const std::string& queue_id, Live& live);   // REQUIRES: mu_ held
  void collectGarbage();                                    // REQUIRES: mu_ held
  void retire(uint64_t id, const Segment& seg);             // unlink, or move to corrupt/ if damaged
  std::string segmentPath(uint64_t id) const;

  std::string dir_;
  const SpoolOptions options_;
  std::mutex mu_;                 // guards everything below
  std::condition_variable cv_;
  std::condition_variable drained_cv_;
  std::deque<Op> queue_;
  bool stopping_ = false;
  uint64_t enqueued_ = 0, processed_ = 0;
  size_t queued_commits_ = 0;       // kCommit ops in queue_
  size_t last_batch_commits_ = 0;   // in the batch written last
  size_t window_target_ = 0;        // commits the open window waits for (0: no window)
  std::unordered_map<std::string, Live> live_;
  std::map<uint64_t, Segment> segments_;
  uint64_t active_ = 0;
  SpoolStats stats_;
  std::thread writer_;
};

}  // namespace postern::spool
