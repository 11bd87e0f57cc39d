#include "spool/spool.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>

#include "log/log.h"
#include "util/thread_name.h"

namespace postern::spool {

// An open segment file, shared by the writer and by readers (readBody): the handle stays
// open until the last reader is done, even after the segment is deleted.
struct Spool::SegFile {
  SegFile(io::Env& e, int f) : env(e), fd(f) {}
  ~SegFile() { (void)env.close(fd); }
  io::Env& env;
  int fd;
};

namespace {

uint32_t randomNonce() {
  static thread_local std::mt19937 rng(std::random_device{}());
  return rng();
}

bool parseSegmentName(std::string_view name, uint64_t& id) {
  if (name.size() != 24 || name.substr(0, 4) != "seg-" || name.substr(20) != ".log") return false;
  id = 0;
  for (char c : name.substr(4, 16)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    id = id << 4 | static_cast<uint64_t>(d);
  }
  return true;
}

}  // namespace

std::vector<StateChange> changePending(const Pending& msg, const std::function<void(RcptState&)>& edit) {
  std::vector<StateChange> out;
  for (uint32_t i = 0; i < msg.state.size(); ++i) {
    if (msg.state[i].status != RcptStatus::kPending) continue;
    RcptState st = msg.state[i];
    edit(st);
    out.push_back({i, std::move(st)});
  }
  return out;
}

Spool::Spool(io::Env& env, std::string dir, SpoolOptions options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

std::string Spool::segmentPath(uint64_t id) const { return fmt::format("{}/seg-{:016x}.log", dir_, id); }

Result<std::unique_ptr<Spool>> Spool::open(io::Env& env, const std::string& dir, std::vector<Pending>* pending,
                                           SpoolOptions options) {
  if (Status s = io::makeDirs(env, dir); !s) return s;
  if (Status s = io::makeDirs(env, dir + "/corrupt"); !s) return s;
  std::unique_ptr<Spool> sp(new Spool(env, dir, options));
  auto lock_fd = env.openAt(io::kCwd, dir + "/LOCK", io::kRead | io::kWrite | io::kCreate, 0600);
  if (!lock_fd) return lock_fd.status();
  sp->lock_fd_ = io::Fd(env, *lock_fd);
  if (Status s = env.lock(*lock_fd); !s) {
    if (s.sysErrno() == EWOULDBLOCK)
      return Status::exists(fmt::format("the spool {} is in use by another postern process", dir));
    return s;
  }
  if (Status s = sp->recover(pending); !s) return s;
  auto seg = sp->createSegment(sp->next_segment_id_++);
  if (!seg) return seg.status();
  sp->active_ = sp->next_segment_id_ - 1;
  sp->segments_[sp->active_] = std::move(seg.value());
  sp->writer_ = std::thread([p = sp.get()] {
    util::setThreadName("postern-spool");
    p->writerLoop();
  });
  return sp;
}

Spool::~Spool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

// Creates, stamps and syncs a new segment file (and its folder entry). A failure leaves
// no file behind, so the next attempt is not stopped by an O_EXCL leftover.
Result<Spool::Segment> Spool::createSegment(uint64_t id) {
  std::string path = segmentPath(id);
  auto fd = env_.openAt(io::kCwd, path, io::kRead | io::kWrite | io::kCreate | io::kExclusive | io::kAppend, 0600);
  if (!fd) return fd.status();
  Segment seg;
  seg.file = std::make_shared<SegFile>(env_, *fd);
  seg.nonce = randomNonce();
  std::string header = encodeSegmentHeader(seg.nonce);
  Status s = io::writeAll(env_, *fd, header);
  if (s) s = env_.fdatasync(*fd);
  if (s) s = io::fsyncDir(env_, dir_);
  if (!s) {
    seg.file.reset();
    (void)env_.unlinkAt(io::kCwd, path);
    return Status::fromErrno(s.sysErrno(), fmt::format("create {}: {}", path, s.message()));
  }
  seg.size = seg.synced = header.size();
  return seg;
}

// ---------------------------------------------------------------------------------------
// Recovery

void Spool::quarantineCopy(const std::string& name, std::string_view bytes) {
  std::string path = dir_ + "/corrupt/" + name;
  auto fd = env_.openAt(io::kCwd, path, io::kWrite | io::kCreate | io::kTruncate, 0600);
  Status s = fd ? io::writeAll(env_, *fd, bytes) : fd.status();
  if (fd && s) s = env_.fdatasync(*fd);
  if (fd) (void)env_.close(*fd);
  if (s) s = io::fsyncDir(env_, dir_ + "/corrupt");
  if (!s) log::error("spool.quarantine_failed").kv("file", path).kv("reason", s.message());
}

Status Spool::recoverSegment(uint64_t id, bool newest, std::unordered_map<std::string, Live>& live,
                             std::vector<std::string>& order) {
  std::string path = segmentPath(id);
  std::string name = fmt::format("seg-{:016x}.log", id);
  auto content = io::readFile(env_, path);
  if (!content) return content.status();
  std::string_view buf = *content;
  SegmentHeader h = scanSegmentHeader(buf);
  if (h.status != SegmentHeader::kOk) {
    if (buf.size() < kSegmentHeaderSizeV2) {
      // Created but never stamped: no record was ever acknowledged from it.
      (void)env_.unlinkAt(io::kCwd, path);
      return Status::ok();
    }
    if (h.status == SegmentHeader::kBad && std::memcmp(buf.data(), kSegmentMagicV2, 7) == 0) {
      // The header's checksum failed; its nonce may still be right, and records prove it.
      h.status = SegmentHeader::kOk;
      h.version = 2;
      std::memcpy(&h.nonce, buf.data() + 8, 4);
      h.size = kSegmentHeaderSizeV2;
      log::error("spool.corrupt_header").kv("file", path).kv("action", "records that check are recovered");
    } else {
      log::error("spool.corrupt_segment").kv("file", path).kv("reason", "bad header")
          .kv("action", "moved to corrupt/; nothing in it can be read");
      stats_.corrupt_regions++;
      (void)env_.renameAt(io::kCwd, path, io::kCwd, dir_ + "/corrupt/" + name);
      return Status::ok();
    }
  }
  Segment seg;
  auto fd = env_.openAt(io::kCwd, path, io::kRead);
  if (!fd) return fd.status();
  seg.file = std::make_shared<SegFile>(env_, *fd);
  seg.version = h.version;
  seg.nonce = h.nonce;
  size_t pos = h.size;
  bool copied = false;
  while (pos < buf.size()) {
    ScannedRecord r = scanRecord(buf.substr(pos), h.version, h.nonce);
    if (r.status != ScanStatus::kRecord) {
      size_t next = h.version == 2 ? findNextRecord(buf, pos + 1, h.nonce) : std::string_view::npos;
      if (next == std::string_view::npos && (h.version == 2 || newest)) {
        // Nothing valid follows: a write that never completed (never acknowledged, as no
        // sync covered it). Cut it off so the file ends on a record.
        log::warn("spool.torn_tail").kv("file", path).kv("offset", uint64_t(pos))
            .kv("dropped", uint64_t(buf.size() - pos));
        stats_.torn_tails++;
        auto wfd = env_.openAt(io::kCwd, path, io::kWrite);
        Status s = wfd ? env_.ftruncate(*wfd, pos) : wfd.status();
        if (s) s = env_.fdatasync(*wfd);
        if (wfd) (void)env_.close(*wfd);
        if (!s) log::warn("spool.truncate_failed").kv("file", path).kv("reason", s.message());
        break;
      }
      // Damage in the middle: keep everything that checks after it.
      stats_.corrupt_regions++;
      seg.damaged = true;
      uint64_t skipped = (next == std::string_view::npos ? buf.size() : next) - pos;
      log::error("spool.corrupt_record").kv("file", path).kv("offset", uint64_t(pos))
          .kv("reason", r.status == ScanStatus::kTruncated ? "truncated" : "checksum").kv("skipped", skipped)
          .kv("action", next == std::string_view::npos ? "records before it are recovered; a copy is in corrupt/"
                                                        : "records after it are recovered; a copy is in corrupt/");
      if (!copied) {
        quarantineCopy(name, buf);
        copied = true;
      }
      if (next == std::string_view::npos) break;
      pos = next;
      continue;
    }
    uint64_t payload_off = pos + r.header_size;
    switch (r.type) {
      case RecordType::kChunk: {
        std::string_view qid, data;
        size_t off;
        if (decodeChunk(r.payload, qid, data, off)) {
          Live& l = live[std::string(qid)];
          if (!l.committed) l.extents.push_back({id, payload_off + off, data.size()});
        }
        break;
      }
      case RecordType::kMessage: {
        Envelope env;
        std::string_view tail;
        size_t off;
        if (!decodeMessage(r.payload, h.version, env, tail, off)) {
          log::error("spool.corrupt_record").kv("file", path).kv("offset", uint64_t(pos)).kv("reason", "envelope");
          stats_.corrupt_regions++;
          break;
        }
        Live& l = live[env.queue_id];
        // A relocated copy (compaction) replaces what the older segments held.
        if ((env.flags & kRelocated) || l.committed) l.extents.clear();
        if (!l.committed) order.push_back(env.queue_id);
        l.extents.push_back({id, payload_off + off, tail.size()});
        if (!l.committed) l.state.assign(env.recipients.size(), RcptState{});
        l.committed = true;
        env.flags &= ~kRelocated;
        l.env = std::move(env);
        break;
      }
      case RecordType::kDone: {
        std::string_view qid;
        std::vector<uint32_t> rcpts;
        if (!decodeDone(r.payload, qid, rcpts)) break;
        if (auto it = live.find(std::string(qid)); it != live.end())
          for (uint32_t idx : rcpts)
            if (idx < it->second.state.size()) it->second.state[idx].status = RcptStatus::kDelivered;
        break;
      }
      case RecordType::kAbort: {
        std::string_view qid;
        if (decodeAbort(r.payload, qid))
          if (auto it = live.find(std::string(qid)); it != live.end() && !it->second.committed) live.erase(it);
        break;
      }
      case RecordType::kState: {
        std::string_view qid;
        std::vector<StateChange> changes;
        if (!decodeState(r.payload, qid, changes)) break;
        if (auto it = live.find(std::string(qid)); it != live.end() && it->second.committed)
          for (const auto& c : changes)
            if (c.index < it->second.state.size()) it->second.state[c.index] = c.state;
        break;
      }
    }
    pos += r.consumed;
  }
  seg.size = seg.synced = pos;
  segments_[id] = std::move(seg);
  return Status::ok();
}

Status Spool::recover(std::vector<Pending>* pending) {
  auto dfd = env_.openAt(io::kCwd, dir_, io::kRead | io::kDirectory);
  if (!dfd) return dfd.status();
  io::Fd dguard(env_, *dfd);
  auto names = env_.listDir(*dfd);
  if (!names) return names.status();
  std::vector<uint64_t> ids;
  for (const auto& n : *names) {
    uint64_t id;
    if (parseSegmentName(n, id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  if (!ids.empty()) next_segment_id_ = ids.back() + 1;

  std::unordered_map<std::string, Live> live;
  std::vector<std::string> order;
  for (size_t i = 0; i < ids.size(); ++i)
    if (Status s = recoverSegment(ids[i], i + 1 == ids.size(), live, order); !s) return s;

  // Settle: uncommitted chunks are garbage (but named if damage may have eaten their
  // envelope); a committed message must read back at its envelope's size.
  for (auto it = live.begin(); it != live.end();) {
    Live& l = it->second;
    bool in_damaged = false;
    for (const auto& e : l.extents)
      if (auto s = segments_.find(e.segment); s != segments_.end() && s->second.damaged) in_damaged = true;
    if (!l.committed) {
      if (in_damaged)
        log::error("spool.orphan_chunks").kv("queue_id", it->first)
            .kv("reason", "chunks without an envelope in a damaged segment: a message may have been lost")
            .kv("action", "the segment's copy is in corrupt/");
      it = live.erase(it);
      continue;
    }
    // Finished messages are dropped first: their older segments may be gone already.
    l.remaining = 0;
    for (const auto& st : l.state) l.remaining += finished(st.status) ? 0 : 1;
    if (l.remaining == 0) {
      it = live.erase(it);
      continue;
    }
    uint64_t bytes = 0;
    for (const auto& e : l.extents) bytes += e.length;
    if (bytes != l.env.size) {
      stats_.damaged_messages++;
      std::vector<std::string> to;
      for (const auto& r : l.env.recipients) to.push_back(r.mailbox);
      log::error("spool.message_damaged").kv("queue_id", it->first).kv("from", l.env.mail_from)
          .kv("to", fmt::format("{}", fmt::join(to, ","))).kv("size", l.env.size).kv("readable", bytes)
          .kv("action", fmt::format("not delivered; what could be read is in corrupt/{}.partial", it->first));
      std::string partial;
      for (const auto& e : l.extents) {
        std::string part(e.length, '\0');
        if (io::preadAll(env_, segments_[e.segment].file->fd, part.data(), part.size(), e.offset)) partial += part;
      }
      quarantineCopy(it->first + ".partial", partial);
      it = live.erase(it);
      continue;
    }
    ++it;
  }
  {
    std::lock_guard lock(mu_);
    for (auto& [qid, l] : live) {
      std::vector<Extent> extents;
      extents.swap(l.extents);
      l.bytes = 0;
      for (const auto& e : extents) addExtent(qid, l, e);
      live_.emplace(qid, std::move(l));
    }
  }
  if (pending) {
    std::set<std::string> seen;
    for (const auto& qid : order) {
      auto m = live_.find(qid);
      if (m == live_.end() || !seen.insert(qid).second) continue;
      pending->push_back({m->second.env, m->second.state});
    }
  }
  // Segments that never held a record, and the finished oldest ones, go now.
  std::vector<uint64_t> gone;
  {
    std::lock_guard lock(mu_);
    for (auto it = segments_.begin(); it != segments_.end();) {
      bool header_only = it->second.size <= kSegmentHeaderSizeV2 && it->second.live == 0;
      if (header_only) {
        gone.push_back(it->first);
        it = segments_.erase(it);
      } else {
        ++it;
      }
    }
    auto more = retirable();
    gone.insert(gone.end(), more.begin(), more.end());
  }
  retire(gone);
  return Status::ok();
}

// ---------------------------------------------------------------------------------------
// Bookkeeping (REQUIRES: mu_ held)

void Spool::addExtent(const std::string&, Live& l, Extent e) {
  Segment& s = segments_[e.segment];
  bool first_here = std::none_of(l.extents.begin(), l.extents.end(), [&](const Extent& x) { return x.segment == e.segment; });
  if (first_here) s.live++;
  s.live_bytes += e.length;
  l.bytes += e.length;
  live_bytes_ += e.length;
  l.extents.push_back(e);
}

void Spool::release(const std::string& queue_id) {
  auto it = live_.find(queue_id);
  if (it == live_.end()) return;
  if (it->second.poisoned) --poisoned_;
  const auto& ex = it->second.extents;
  for (size_t i = 0; i < ex.size(); ++i) {
    auto s = segments_.find(ex[i].segment);
    if (s == segments_.end()) continue;
    s->second.live_bytes -= ex[i].length;
    // Each segment counts the message once: at its first extent there.
    bool first = std::none_of(ex.begin(), ex.begin() + static_cast<long>(i),
                              [&](const Extent& x) { return x.segment == ex[i].segment; });
    if (first && s->second.live > 0) s->second.live--;
  }
  live_bytes_ -= it->second.bytes;
  live_.erase(it);
}

// A sync now covers the records that finished these messages: their space can go.
void Spool::releaseSynced() {
  for (const auto& qid : finished_unsynced_) {
    auto it = live_.find(qid);
    if (it != live_.end() && it->second.remaining == 0) release(qid);
  }
  finished_unsynced_.clear();
}

// The active segment was cut back or replaced: records that finished messages may be gone
// with the unsynced part. They are written again, in full, before anything else.
void Spool::rewriteUnsyncedState() {
  for (auto q = finished_unsynced_.rbegin(); q != finished_unsynced_.rend(); ++q) {
    auto it = live_.find(*q);
    if (it == live_.end()) continue;
    Op op;
    op.kind = Op::kState;
    op.queue_id = *q;
    for (uint32_t i = 0; i < it->second.state.size(); ++i) op.changes.push_back({i, it->second.state[i]});
    queue_.push_front(std::move(op));
    ++enqueued_;
  }
  finished_unsynced_.clear();
}

void Spool::applyState(Live& l, const std::vector<StateChange>& changes) {
  for (const auto& c : changes) {
    if (c.index >= l.state.size()) continue;
    bool was = finished(l.state[c.index].status), now = finished(c.state.status);
    l.state[c.index] = c.state;
    if (!was && now) --l.remaining;
    if (was && !now) ++l.remaining;
  }
}

// Segments are deleted oldest first: a segment may hold state records of messages in
// older ones, so it outlives them.
std::vector<uint64_t> Spool::retirable() {
  std::vector<uint64_t> out;
  for (auto it = segments_.begin(); it != segments_.end() && it->first != active_ && it->second.live == 0;) {
    out.push_back(it->first);
    it = segments_.erase(it);
  }
  stats_.segments_deleted += out.size();
  return out;
}

void Spool::retire(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return;
  for (uint64_t id : ids)
    if (Status s = env_.unlinkAt(io::kCwd, segmentPath(id)); !s && s.sysErrno() != ENOENT)
      log::warn("spool.delete_failed").kv("file", segmentPath(id)).kv("reason", s.message());
  (void)io::fsyncDir(env_, dir_);
}

// A write or sync failed: nothing more goes to the active segment until recoverFromError
// has cut it back. Transactions with chunks past the last sync lose them: they must fail.
void Spool::noteWriteError(const Status& s, uint64_t seg_id) {
  stats_.write_errors++;
  if (error_.isOk())
    log::error("spool.write_failed").kv("file", segmentPath(seg_id)).kv("reason", s.message())
        .kv("action", "commits are refused until the segment is cut back or replaced");
  error_ = s;
  uint64_t synced = segments_[seg_id].synced;
  for (auto& [qid, l] : live_) {
    if (l.committed || l.poisoned) continue;
    for (const auto& e : l.extents)
      if (e.segment == seg_id && e.offset + e.length > synced && !l.poisoned) {
        l.poisoned = true;
        ++poisoned_;
      }
  }
}

// ---------------------------------------------------------------------------------------
// The writer

bool Spool::recoverFromError() {
  uint64_t id = active_;
  Segment& seg = segments_[id];
  Status s = env_.ftruncate(seg.file->fd, seg.synced);
  if (s) s = env_.fdatasync(seg.file->fd);
  if (s) {
    std::lock_guard lock(mu_);
    seg.size = seg.synced;
    rewriteUnsyncedState();
    log::info("spool.write_recovered").kv("file", segmentPath(id)).kv("action", "cut back to the last synced record");
    error_ = Status::ok();
    return true;
  }
  auto fresh = spare_ ? Result<Segment>(std::move(*spare_)) : createSegment(next_segment_id_++);
  uint64_t fresh_id = spare_ ? spare_id_ : next_segment_id_ - 1;
  spare_.reset();
  if (!fresh) {
    std::lock_guard lock(mu_);
    error_ = fresh.status();
    return false;
  }
  std::lock_guard lock(mu_);
  segments_[fresh_id] = std::move(fresh.value());
  active_ = fresh_id;
  rewriteUnsyncedState();
  log::warn("spool.segment_abandoned").kv("file", segmentPath(id)).kv("reason", s.message())
      .kv("now", segmentPath(fresh_id));
  error_ = Status::ok();
  return true;
}

void Spool::enqueue(Op op) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (op.kind == Op::kCommit) ++queued_commits_;
    queue_.push_back(std::move(op));
    ++enqueued_;
    // The writer waits either for a first op or for the commit window to fill; other
    // enqueues need not wake it (it looks at the queue whenever it finishes a batch).
    wake = queue_.size() == 1 || (window_target_ > 0 && queued_commits_ == window_target_);
  }
  if (wake) cv_.notify_one();
}

void Spool::appendChunk(const std::string& queue_id, std::string data, Callback cb) {
  Op op;
  op.kind = Op::kChunk;
  op.queue_id = queue_id;
  op.data = std::move(data);
  op.cb = std::move(cb);
  enqueue(std::move(op));
}

void Spool::commit(Envelope env, std::shared_ptr<const std::string> tail, Callback cb, bool whole) {
  Op op;
  op.kind = Op::kCommit;
  op.whole = whole;
  if (whole) env.flags |= kRelocated;
  op.queue_id = env.queue_id;
  op.env = std::move(env);
  op.tail = std::move(tail);
  op.cb = std::move(cb);
  if (options_.on_durable) op.queued = std::chrono::steady_clock::now();
  enqueue(std::move(op));
}

void Spool::abort(const std::string& queue_id) {
  Op op;
  op.kind = Op::kAbort;
  op.queue_id = queue_id;
  enqueue(std::move(op));
}

void Spool::updateState(const std::string& queue_id, std::vector<StateChange> changes, Callback cb) {
  {
    // In memory at once, so find() and list() agree with what the caller just decided.
    // The space is released only once the record is written (processBatch), and segments
    // are deleted only after a sync covers it.
    std::lock_guard lock(mu_);
    auto it = live_.find(queue_id);
    if (it != live_.end() && it->second.committed) applyState(it->second, changes);
  }
  Op op;
  op.kind = Op::kState;
  op.queue_id = queue_id;
  op.changes = std::move(changes);
  op.cb = std::move(cb);
  enqueue(std::move(op));
}

void Spool::drain() {
  std::unique_lock lock(mu_);
  uint64_t target = enqueued_;
  drained_cv_.wait(lock, [&] { return processed_ >= target; });
}

SpoolStats Spool::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

SpoolUsage Spool::usage() {
  std::lock_guard lock(mu_);
  SpoolUsage u;
  for (const auto& [id, s] : segments_) u.disk_bytes += s.size;
  u.live_bytes = live_bytes_;
  u.segments = segments_.size();
  for (const auto& [k, v] : live_) u.messages += v.committed ? 1 : 0;
  return u;
}

size_t Spool::liveMessages() { return usage().messages; }

bool Spool::failing() {
  std::lock_guard lock(mu_);
  return !error_.isOk();
}

std::optional<Pending> Spool::find(const std::string& queue_id) {
  std::lock_guard lock(mu_);
  auto it = live_.find(queue_id);
  if (it == live_.end() || !it->second.committed || it->second.remaining == 0) return std::nullopt;
  return Pending{it->second.env, it->second.state};
}

std::vector<Pending> Spool::list() {
  std::lock_guard lock(mu_);
  std::vector<Pending> out;
  for (const auto& [qid, l] : live_)
    if (l.committed && l.remaining > 0) out.push_back({l.env, l.state});
  std::sort(out.begin(), out.end(), [](const Pending& a, const Pending& b) {
    return a.env.accepted_us != b.env.accepted_us ? a.env.accepted_us < b.env.accepted_us : a.env.queue_id < b.env.queue_id;
  });
  return out;
}

void Spool::writerLoop() {
  bool more_compaction = false;
  for (;;) {
    std::deque<Op> batch;
    {
      std::unique_lock lock(mu_);
      if (!more_compaction) cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) {
        lock.unlock();
        (void)syncActive();   // state records written since the last commit
        return;
      }
      // The window waits for as many commits as the last batch held (the sessions that are
      // committing together), at most commit_batch, at most commit_wait.
      window_target_ = std::min(last_batch_commits_, options_.commit_batch);
      if (options_.commit_wait.count() > 0 && window_target_ > 1 && queued_commits_ > 0 &&
          queued_commits_ < window_target_ && !stopping_) {
        stats_.windows++;
        cv_.wait_until(lock, std::chrono::steady_clock::now() + options_.commit_wait,
                       [&] { return stopping_ || queued_commits_ >= window_target_; });
      }
      window_target_ = 0;
      if (queued_commits_ > 0) last_batch_commits_ = queued_commits_;   // a batch of state ops says nothing
      queued_commits_ = 0;
      batch.swap(queue_);
    }
    if (!batch.empty()) processBatch(batch);
    rollIfFull();
    more_compaction = compactStep();
    // Finished messages free their space once a sync covers their records. A commit's sync
    // or a roll usually does; when the writer is idle and one of them holds space in an
    // older segment (which could then be deleted), it syncs for them.
    bool sync_for_space = false;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty())
        for (const auto& qid : finished_unsynced_) {
          auto it = live_.find(qid);
          if (it == live_.end()) continue;
          for (const auto& e : it->second.extents) sync_for_space |= e.segment != active_;
          if (sync_for_space) break;
        }
    }
    if (sync_for_space) (void)syncActive();
    // A segment is deleted because the state records that finished its messages say so:
    // they must be durable first, or a crash would bring the messages back without it.
    bool deletable;
    {
      std::lock_guard lock(mu_);
      auto first = segments_.begin();
      deletable = first != segments_.end() && first->first != active_ && first->second.live == 0;
    }
    if (deletable && syncActive()) {
      std::vector<uint64_t> gone;
      {
        std::lock_guard lock(mu_);
        gone = retirable();
      }
      retire(gone);
    }
  }
}

// Writes one batch: all records appended with writev, then a single fdatasync if any
// commit is in it, then the callbacks. Chunks need no sync of their own: the commit
// that completes their message syncs them (same file) or the segment roll did.
void Spool::processBatch(std::deque<Op>& batch) {
  bool usable = error_.isOk() || recoverFromError();
  uint64_t seg_id = active_;
  Segment& seg = segments_[seg_id];
  std::vector<bool> skip(batch.size(), false);   // not written: refused before any I/O
  if (!usable || poisoned_ > 0) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      const Op& op = batch[i];
      if (op.kind != Op::kChunk && op.kind != Op::kCommit) continue;
      auto it = live_.find(op.queue_id);
      skip[i] = !usable || (it != live_.end() && it->second.poisoned);
    }
  }

  std::vector<std::string> headers;
  headers.reserve(batch.size());
  std::vector<iovec> iov;
  struct Placed {
    uint64_t offset;
    uint64_t length;
  };
  std::vector<Placed> placed(batch.size());
  const uint64_t start_size = seg.size;
  uint64_t off = start_size;
  bool need_sync = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    std::string h;
    std::string_view data;
    if (!skip[i] && usable) {
      switch (op.kind) {
        case Op::kChunk:
          encodeChunkHeader(h, seg.nonce, op.queue_id, op.data);
          data = op.data;
          break;
        case Op::kCommit:
          data = *op.tail;
          encodeMessageHeader(h, seg.nonce, op.env, data);
          need_sync = true;
          break;
        case Op::kState: encodeState(h, seg.nonce, op.queue_id, op.changes); break;
        case Op::kAbort: encodeAbort(h, seg.nonce, op.queue_id); break;
        case Op::kBarrier: break;
      }
    }
    headers.push_back(std::move(h));
    placed[i] = {off + headers.back().size(), data.size()};
    off += headers.back().size() + data.size();
    if (!headers.back().empty()) iov.push_back({headers.back().data(), headers.back().size()});
    if (!data.empty()) iov.push_back({const_cast<char*>(data.data()), data.size()});
  }

  Status st = usable ? Status::ok() : error_;
  if (usable && !iov.empty()) {
    st = io::writevAll(env_, seg.file->fd, iov);
    if (st && need_sync) st = env_.fdatasync(seg.file->fd);
  }
  Status refused = st;
  if (!refused && refused.isNoSpace())
    refused = Status::fromErrno(refused.sysErrno(), "the spool's disk is full: " + refused.message());

  std::vector<std::pair<Callback, Status>> callbacks;
  const auto durable_at = options_.on_durable ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  {
    std::lock_guard lock(mu_);
    if (usable && !st) noteWriteError(st, seg_id);
    if (st) {
      seg.size = off;
      if (need_sync) {
        seg.synced = off;
        stats_.syncs++;
      }
      stats_.bytes += off - start_size;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Op& op = batch[i];
      Status result = Status::ok();
      switch (op.kind) {
        case Op::kChunk: {
          Live& l = live_[op.queue_id];
          if (skip[i] || !st) {
            if (!l.poisoned) ++poisoned_;
            l.poisoned = true;
            result = skip[i] && usable ? Status::io("an earlier part of this message was lost to a write error") : refused;
          } else {
            addExtent(op.queue_id, l, {seg_id, placed[i].offset, placed[i].length});
          }
          break;
        }
        case Op::kCommit: {
          auto it = live_.find(op.queue_id);
          if (skip[i] || !st) {
            stats_.refused++;
            result = skip[i] && usable ? Status::io("an earlier part of this message was lost to a write error") : refused;
            release(op.queue_id);
            break;
          }
          if (op.whole && it != live_.end()) {   // the chunks are superseded: dead bytes now
            release(op.queue_id);
            it = live_.end();
          }
          Live& l = it != live_.end() ? it->second : live_[op.queue_id];
          addExtent(op.queue_id, l, {seg_id, placed[i].offset, placed[i].length});
          op.env.flags &= ~kRelocated;
          l.committed = true;
          l.state.assign(op.env.recipients.size(), RcptState{});
          l.remaining = op.env.recipients.size();
          l.env = std::move(op.env);
          stats_.commits++;
          if (options_.on_durable) options_.on_durable(durable_at - op.queued);
          if (l.remaining == 0) release(op.queue_id);
          break;
        }
        case Op::kAbort: {
          if (auto it = live_.find(op.queue_id); it != live_.end() && !it->second.committed) release(op.queue_id);
          break;
        }
        case Op::kState: {
          // Applied in memory by updateState already. If the record could not be written,
          // a crash before the next good sync repeats the attempt, which finds the copy.
          // A record that failed is written again once the segment is usable
          // (rewriteUnsyncedState); one that was written waits for a sync to cover it.
          if (!st) result = st;
          auto it = live_.find(op.queue_id);
          if (it != live_.end() && it->second.committed && it->second.remaining == 0)
            finished_unsynced_.push_back(op.queue_id);
          break;
        }
        case Op::kBarrier: break;
      }
      if (op.cb) callbacks.emplace_back(std::move(op.cb), std::move(result));
    }
    if (st && need_sync) releaseSynced();
    processed_ += batch.size();
  }
  drained_cv_.notify_all();
  for (auto& [cb, s] : callbacks) cb(s);
}

// Makes everything written to the active segment durable; false (and a sticky error) if
// that fails.
bool Spool::syncActive() {
  if (!error_.isOk()) return false;
  uint64_t id = active_;
  Segment& seg = segments_[id];
  if (seg.synced >= seg.size) return true;
  uint64_t size = seg.size;
  Status s = env_.fdatasync(seg.file->fd);
  std::lock_guard lock(mu_);
  if (!s) {
    noteWriteError(s, id);
    return false;
  }
  seg.synced = size;
  stats_.syncs++;
  releaseSynced();
  return true;
}

// Moves to the next segment once the active one is big enough. The old one is synced first
// so chunks written to it are durable before any commit in the new one is acknowledged.
// The next segment is created ahead of time (at half the target size), so the roll itself
// only swaps handles.
void Spool::rollIfFull() {
  if (!error_.isOk()) return;
  uint64_t id = active_;
  Segment& seg = segments_[id];
  if (!spare_ && seg.size >= options_.segment_size / 2) {
    auto s = createSegment(next_segment_id_);
    if (s) {
      spare_id_ = next_segment_id_++;
      spare_ = std::move(s.value());
    } else {
      ++next_segment_id_;
      log::warn("spool.prepare_segment_failed").kv("reason", s.status().message());
    }
  }
  if (seg.size < options_.segment_size || !spare_) return;
  if (seg.synced < seg.size) {
    if (Status s = env_.fdatasync(seg.file->fd); !s) {
      std::lock_guard lock(mu_);
      noteWriteError(s, id);
      return;
    }
  }
  std::lock_guard lock(mu_);
  seg.synced = seg.size;
  releaseSynced();
  segments_[spare_id_] = std::move(*spare_);
  spare_.reset();
  active_ = spare_id_;
}

// Copies live messages out of the oldest segment into the active one once old segments
// hold more dead bytes than live ones (and more than a segment), so that deferred mail
// does not keep finished segments on disk. Bounded work per step; true if more is due.
bool Spool::compactStep() {
  struct Move {
    std::string qid;
    Envelope env;
    std::vector<RcptState> state;
    std::vector<std::pair<std::shared_ptr<SegFile>, Extent>> parts;
  };
  std::vector<Move> moves;
  uint64_t oldest;
  {
    std::lock_guard lock(mu_);
    if (!error_.isOk() || segments_.size() < 2) return false;
    oldest = segments_.begin()->first;
    if (oldest == active_) return false;
    uint64_t disk = 0;
    for (const auto& [id, s] : segments_)
      if (id != active_) disk += s.size;
    uint64_t dead = disk > live_bytes_ ? disk - live_bytes_ : 0;
    if (dead <= std::max(live_bytes_, options_.segment_size)) return false;
    uint64_t budget = 0;
    for (const auto& [qid, l] : live_) {
      bool here = std::any_of(l.extents.begin(), l.extents.end(), [&](const Extent& e) { return e.segment == oldest; });
      if (!here) continue;
      if (!l.committed) return false;   // a transaction in progress: wait for it
      if (budget >= kCompactStepBytes) continue;
      Move m{qid, l.env, l.state, {}};
      for (const auto& e : l.extents) m.parts.emplace_back(segments_[e.segment].file, e);
      budget += l.bytes;
      moves.push_back(std::move(m));
    }
  }
  uint64_t id = active_;
  Segment& seg = segments_[id];
  std::string buf;
  std::vector<std::pair<uint64_t, uint64_t>> where;   // tail offset, length per move
  for (auto& m : moves) {
    std::string body;
    for (const auto& [file, e] : m.parts) {
      size_t at = body.size();
      body.resize(at + e.length);
      if (Status s = io::preadAll(env_, file->fd, body.data() + at, e.length, e.offset); !s) {
        log::error("spool.compact_read_failed").kv("queue_id", m.qid).kv("reason", s.message());
        return false;
      }
    }
    Envelope env = m.env;
    env.flags |= kRelocated;
    encodeMessageHeader(buf, seg.nonce, env, body);
    where.emplace_back(seg.size + buf.size(), body.size());
    buf += body;
    std::vector<StateChange> snap;
    for (uint32_t i = 0; i < m.state.size(); ++i) snap.push_back({i, m.state[i]});
    encodeState(buf, seg.nonce, m.qid, snap);
  }
  Status st = io::writeAll(env_, seg.file->fd, buf);
  if (st) st = env_.fdatasync(seg.file->fd);
  std::lock_guard lock(mu_);
  if (!st) {
    noteWriteError(st, id);
    return false;
  }
  seg.size += buf.size();
  seg.synced = seg.size;
  stats_.syncs++;
  releaseSynced();
  for (size_t i = 0; i < moves.size(); ++i) {
    auto it = live_.find(moves[i].qid);
    if (it == live_.end()) continue;   // finished meanwhile (cannot: state ops run on this thread)
    Live& l = it->second;
    std::vector<Extent> old;
    old.swap(l.extents);
    std::set<uint64_t> segs;
    for (const auto& e : old) {
      segs.insert(e.segment);
      segments_[e.segment].live_bytes -= e.length;
      live_bytes_ -= e.length;
    }
    for (uint64_t s : segs)
      if (segments_[s].live > 0) segments_[s].live--;
    l.bytes = 0;
    addExtent(moves[i].qid, l, {id, where[i].first, where[i].second});
    stats_.relocated++;
  }
  return !moves.empty();
}

Result<std::string> Spool::readBody(const std::string& queue_id) { return readExtents(queue_id, true); }

Result<std::string> Spool::readChunks(const std::string& queue_id) { return readExtents(queue_id, false); }

Result<std::string> Spool::readExtents(const std::string& queue_id, bool committed) {
  std::vector<std::pair<std::shared_ptr<SegFile>, Extent>> parts;
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(queue_id);
    if (!committed && it == live_.end()) return std::string();
    if (it == live_.end() || it->second.committed != committed) return Status::notFound("no such message " + queue_id);
    for (const auto& e : it->second.extents) {
      auto s = segments_.find(e.segment);
      if (s == segments_.end()) return Status::corruption("segment gone for " + queue_id);
      parts.emplace_back(s->second.file, e);
    }
  }
  std::string out;
  size_t total = 0;
  for (const auto& [f, e] : parts) total += e.length;
  out.resize(total);
  size_t pos = 0;
  for (const auto& [f, e] : parts) {
    if (Status s = io::preadAll(env_, f->fd, out.data() + pos, e.length, e.offset); !s)
      return Status::fromErrno(s.sysErrno(), fmt::format("read spool for {}: {}", queue_id, s.message()));
    pos += e.length;
  }
  return out;
}

}  // namespace postern::spool
