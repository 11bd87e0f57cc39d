// Durable acceptance with group commit, and the durable queue that drives delivery.
//
// Messages from all connections are appended to one segment file by a single writer
// thread; a batch of commits shares one fdatasync, and no commit is acknowledged before
// that fdatasync returns. Record format: record.h. All file I/O goes through an io::Env.
//
// Faults: after a failed write or sync the spool is in a sticky error state. Every commit
// is refused (the session answers 451/452) until the writer has cut the segment back to
// the last synced offset or moved to a fresh segment; transactions whose chunks were in
// the unsynced part fail too. A 250 is only ever given for bytes a successful sync covered.
//
// State: each committed message carries its recipients' delivery state (pending with
// attempts and next attempt time, delivered, failed, deleted), kept by kState records, so
// the schedule survives restarts. A message whose recipients are all finished is dropped.
//
// Space: segments are deleted oldest first once nothing live is in them. Live messages in
// the oldest segment are copied forward (compaction) once the dead bytes in old segments
// exceed both the live bytes and one segment, so deferred mail never pins old segments.
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
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "io/env.h"
#include "spool/record.h"
#include "util/status.h"

namespace postern::spool {

inline constexpr uint64_t kSegmentTargetSize = 64ull * 1024 * 1024;
// Bytes of live messages one compaction step copies before the writer looks at new work.
inline constexpr uint64_t kCompactStepBytes = 4ull * 1024 * 1024;

// A committed message still owed delivery to some recipient.
struct Pending {
  Envelope env;
  std::vector<RcptState> state;   // per recipient
};

// The state changes that apply `edit` to every pending recipient of `msg`.
std::vector<StateChange> changePending(const Pending& msg, const std::function<void(RcptState&)>& edit);

struct SpoolStats {
  uint64_t commits = 0;
  uint64_t syncs = 0;         // fdatasync calls; commits/syncs is the group-commit factor
  uint64_t bytes = 0;
  uint64_t segments_deleted = 0;
  uint64_t windows = 0;       // batches that waited for the commit window
  uint64_t write_errors = 0;  // failed writes and syncs (each starts a sticky error)
  uint64_t refused = 0;       // commits refused because of an error
  uint64_t relocated = 0;     // messages copied forward by compaction
  // Recovery.
  uint64_t torn_tails = 0;
  uint64_t corrupt_regions = 0;     // damaged stretches skipped in the middle of a segment
  uint64_t damaged_messages = 0;    // accepted messages that could not be read back whole
};

struct SpoolOptions {
  std::chrono::microseconds commit_wait{1000};   // 0: no window, natural batching only
  size_t commit_batch = 128;                      // commits that close the window early
  uint64_t segment_size = kSegmentTargetSize;     // roll to a new segment past this
  // Called on the writer thread for each commit made durable, with the time since commit()
  // was called (the metrics' commit latency histogram). Must be quick and must not block.
  std::function<void(std::chrono::steady_clock::duration)> on_durable;
};

struct SpoolUsage {
  uint64_t disk_bytes = 0;    // all segment files
  uint64_t live_bytes = 0;    // bodies of messages still owed delivery
  size_t segments = 0;
  size_t messages = 0;
};

class Spool {
 public:
  using Callback = std::function<void(Status)>;

  // Opens (creating if needed) `dir`, takes its lock (one process per spool), recovers
  // existing segments and returns the messages still owed delivery, oldest first.
  // Blocking: call before serving.
  static Result<std::unique_ptr<Spool>> open(io::Env& env, const std::string& dir, std::vector<Pending>* pending,
                                             SpoolOptions options = {});
  ~Spool();

  // Appends a body chunk of a transaction in progress (no fsync). `cb` runs on the writer
  // thread once the bytes are written.
  void appendChunk(const std::string& queue_id, std::string data, Callback cb);
  // Accepts the message: durable once `cb` is called with ok (after fdatasync). With `whole`
  // the tail is the entire body and replaces the chunks appended so far (written as a
  // relocated record, record.h): a message rewritten after it was spilled (verification
  // headers, milter edits).
  void commit(Envelope env, std::shared_ptr<const std::string> tail, Callback cb, bool whole = false);
  // The chunks appended so far for a transaction not yet committed, in order (empty when
  // none). Blocking (pread); call from a disk or CPU-pool thread, after the appendChunk
  // callbacks ran.
  Result<std::string> readChunks(const std::string& queue_id);
  // Forgets a transaction's chunks (client aborted, limits exceeded).
  void abort(const std::string& queue_id);
  // Records recipients' new delivery state; once every recipient is finished the message's
  // space is reclaimed. `cb` (optional) runs once written; the record rides on the next
  // sync (a crash before it repeats the delivery attempt, which finds the earlier copy).
  void updateState(const std::string& queue_id, std::vector<StateChange> changes, Callback cb = {});
  // The whole body of a committed message. Blocking (pread); call from a disk thread.
  Result<std::string> readBody(const std::string& queue_id);
  // A copy of one live message (envelope and state), or of all of them.
  std::optional<Pending> find(const std::string& queue_id);
  std::vector<Pending> list();
  // Blocks until everything queued so far is written (commits also synced; state records
  // ride on the next sync, or on the final one when the spool stops).
  void drain();
  SpoolStats stats();
  SpoolUsage usage();
  size_t liveMessages();
  // True while writes fail and commits are refused.
  bool failing();

 private:
  struct SegFile;
  struct Extent {
    uint64_t segment;
    uint64_t offset;   // of the data within the segment file
    uint64_t length;
  };
  struct Live {
    std::vector<Extent> extents;  // chunks then tail
    bool committed = false;
    bool poisoned = false;        // a chunk was lost to a write error: the commit must fail
    Envelope env;                 // committed only
    std::vector<RcptState> state;
    size_t remaining = 0;         // recipients not finished
    uint64_t bytes = 0;           // sum of extents
  };
  struct Op {
    enum Kind { kChunk, kCommit, kAbort, kState, kBarrier } kind = kBarrier;
    std::string queue_id;
    std::string data;                                // chunk data
    std::shared_ptr<const std::string> tail;         // commit
    bool whole = false;                              // commit: tail replaces the chunks
    Envelope env;                                    // commit
    std::vector<StateChange> changes;                // state
    Callback cb;
    std::chrono::steady_clock::time_point queued;   // commit: when commit() was called
  };
  struct Segment {
    std::shared_ptr<SegFile> file;
    uint32_t nonce = 0;
    int version = 2;
    uint64_t size = 0;     // bytes written (good)
    uint64_t synced = 0;   // bytes a successful sync covered
    size_t live = 0;       // messages with extents here that are not finished
    uint64_t live_bytes = 0;
    bool damaged = false;  // a bad record was found in it at recovery
  };

  Spool(io::Env& env, std::string dir, SpoolOptions options);
  Status recover(std::vector<Pending>* pending);
  Status recoverSegment(uint64_t id, bool newest, std::unordered_map<std::string, Live>& live,
                        std::vector<std::string>& order);
  Result<Segment> createSegment(uint64_t id);
  void writerLoop();
  void enqueue(Op op);
  void processBatch(std::deque<Op>& batch);
  // Writer thread: gets the active segment back into a writable state after an error.
  bool recoverFromError();
  void rollIfFull();
  bool syncActive();
  bool compactStep();   // true when more compaction is due
  void noteWriteError(const Status& s, uint64_t seg_id);   // REQUIRES: mu_ held
  void addExtent(const std::string& queue_id, Live& l, Extent e);   // REQUIRES: mu_ held
  void release(const std::string& queue_id);                // REQUIRES: mu_ held
  void applyState(Live& l, const std::vector<StateChange>& changes);
  void releaseSynced();            // REQUIRES: mu_ held
  void rewriteUnsyncedState();     // REQUIRES: mu_ held
  std::vector<uint64_t> retirable();                        // REQUIRES: mu_ held
  void retire(const std::vector<uint64_t>& ids);            // no lock: file work
  std::string segmentPath(uint64_t id) const;
  void quarantineCopy(const std::string& name, std::string_view bytes);
  Result<std::string> readExtents(const std::string& queue_id, bool committed);

  io::Env& env_;
  std::string dir_;
  const SpoolOptions options_;
  io::Fd lock_fd_;
  std::mutex mu_;                 // guards everything below; never held across file I/O
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
  uint64_t next_segment_id_ = 1;
  std::optional<Segment> spare_;    // created ahead of the roll (writer thread only)
  uint64_t spare_id_ = 0;
  Status error_;                    // sticky: not ok while the active segment is unusable
  uint64_t live_bytes_ = 0;
  size_t poisoned_ = 0;             // live transactions with poisoned set
  // Messages whose finishing state record is written but not yet synced: released (and
  // their segments freed) only once a sync covers the record.
  std::vector<std::string> finished_unsynced_;
  SpoolStats stats_;
  std::thread writer_;
};

}  // namespace postern::spool
