#include "spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log/log.h"
#include "util/fs.h"
#include "util/thread_name.h"

namespace postern::spool {

Spool::Spool(std::string dir, SpoolOptions options) : dir_(std::move(dir)), options_(options) {}

std::string Spool::segmentPath(uint64_t id) const { return fmt::format("{}/seg-{:016x}.log", dir_, id); }

Result<std::unique_ptr<Spool>> Spool::open(const std::string& dir, std::vector<Pending>* pending,
                                           SpoolOptions options) {
  if (Status s = makeDirs(dir); !s) return s;
  if (Status s = makeDirs(dir + "/corrupt"); !s) return s;
  std::unique_ptr<Spool> sp(new Spool(dir, options));
  if (Status s = sp->recover(pending); !s) return s;
  {
    std::lock_guard lock(sp->mu_);
    if (Status s = sp->openNewSegment(); !s) return s;
  }
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
  for (auto& [id, seg] : segments_)
    if (seg.fd >= 0) ::close(seg.fd);
}

// REQUIRES: mu_ held (or single-threaded start-up).
Status Spool::openNewSegment() {
  uint64_t id = segments_.empty() ? 1 : segments_.rbegin()->first + 1;
  std::string path = segmentPath(id);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0640);
  if (fd < 0) return Status::io(fmt::format("create {}: {}", path, std::strerror(errno)));
  if (Status s = writeAll(fd, kSegmentMagic, sizeof kSegmentMagic); !s) {
    ::close(fd);
    return Status::io(fmt::format("write {}: {}", path, s.message()));
  }
  if (::fdatasync(fd) != 0) {
    ::close(fd);
    return Status::io(fmt::format("fdatasync {}: {}", path, std::strerror(errno)));
  }
  if (Status s = fsyncDir(dir_); !s) {
    ::close(fd);
    return s;
  }
  Segment seg;
  seg.fd = fd;
  seg.size = sizeof kSegmentMagic;
  segments_[id] = seg;
  active_ = id;
  return Status::ok();
}

Status Spool::recover(std::vector<Pending>* pending) {
  std::vector<uint64_t> ids;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return Status::io(fmt::format("open {}: {}", dir_, std::strerror(errno)));
  while (dirent* e = ::readdir(d)) {
    unsigned long long id;
    char tail[8];
    if (std::sscanf(e->d_name, "seg-%16llx.%3s", &id, tail) == 2 && std::string_view(tail) == "log") ids.push_back(id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());

  std::unordered_map<std::string, Envelope> messages;
  std::vector<std::string> order;
  std::unordered_map<std::string, std::vector<uint32_t>> done;
  for (size_t i = 0; i < ids.size(); ++i) {
    uint64_t id = ids[i];
    std::string path = segmentPath(id);
    auto content = readFile(path);
    if (!content) return content.status();
    std::string_view buf = *content;
    if (buf.size() < sizeof kSegmentMagic || std::memcmp(buf.data(), kSegmentMagic, sizeof kSegmentMagic) != 0) {
      if (buf.size() < sizeof kSegmentMagic && i + 1 == ids.size()) {
        ::unlink(path.c_str());  // created but never written: nothing was acknowledged from it
        continue;
      }
      log::error("spool.corrupt_segment").kv("file", path).kv("reason", "bad magic");
      ::rename(path.c_str(), fmt::format("{}/corrupt/seg-{:016x}.log", dir_, id).c_str());
      continue;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::io(fmt::format("open {}: {}", path, std::strerror(errno)));
    Segment seg;
    seg.fd = fd;
    size_t pos = sizeof kSegmentMagic;
    while (pos < buf.size()) {
      ScannedRecord r = scanRecord(buf.substr(pos));
      if (r.status != ScanStatus::kRecord) {
        bool last = i + 1 == ids.size();
        // A bad record at the end of the newest segment is a write that never completed
        // (and so was never acknowledged); anything else is damage worth a loud line.
        if (last) {
          log::warn("spool.torn_tail").kv("file", path).kv("offset", uint64_t(pos)).kv("dropped", uint64_t(buf.size() - pos));
          if (::truncate(path.c_str(), static_cast<off_t>(pos)) != 0)
            return Status::io(fmt::format("truncate {}: {}", path, std::strerror(errno)));
        } else {
          log::error("spool.corrupt_record").kv("file", path).kv("offset", uint64_t(pos))
              .kv("reason", r.status == ScanStatus::kTruncated ? "truncated" : "checksum")
              .kv("action", "records before it are recovered; the file is kept in corrupt/");
          seg.damaged = true;
        }
        break;
      }
      uint64_t payload_off = pos + kRecordHeaderSize;
      switch (r.type) {
        case RecordType::kChunk: {
          std::string_view qid, data;
          size_t off;
          if (decodeChunk(r.payload, qid, data, off))
            live_[std::string(qid)].extents.push_back({id, payload_off + off, data.size()});
          break;
        }
        case RecordType::kMessage: {
          Envelope env;
          std::string_view tail;
          size_t off;
          if (!decodeMessage(r.payload, env, tail, off)) {
            log::error("spool.corrupt_record").kv("file", path).kv("offset", uint64_t(pos)).kv("reason", "envelope");
            break;
          }
          Live& l = live_[env.queue_id];
          l.extents.push_back({id, payload_off + off, tail.size()});
          l.committed = true;
          l.done.assign(env.recipients.size(), false);
          l.remaining = env.recipients.size();
          order.push_back(env.queue_id);
          messages[env.queue_id] = std::move(env);
          break;
        }
        case RecordType::kDone: {
          std::string_view qid;
          std::vector<uint32_t> rcpts;
          if (decodeDone(r.payload, qid, rcpts)) {
            auto& v = done[std::string(qid)];
            v.insert(v.end(), rcpts.begin(), rcpts.end());
          }
          break;
        }
        case RecordType::kAbort: {
          std::string_view qid;
          if (decodeAbort(r.payload, qid)) {
            auto it = live_.find(std::string(qid));
            if (it != live_.end() && !it->second.committed) live_.erase(it);
          }
          break;
        }
      }
      pos += r.consumed;
    }
    seg.size = pos;
    segments_[id] = seg;
  }

  // Settle: apply done records; uncommitted chunks are garbage; count what each segment holds.
  for (auto it = live_.begin(); it != live_.end();) {
    Live& l = it->second;
    if (!l.committed) {
      it = live_.erase(it);
      continue;
    }
    if (auto d = done.find(it->first); d != done.end()) {
      for (uint32_t idx : d->second) {
        if (idx < l.done.size() && !l.done[idx]) {
          l.done[idx] = true;
          --l.remaining;
        }
      }
    }
    if (l.remaining == 0) {
      messages.erase(it->first);
      it = live_.erase(it);
      continue;
    }
    std::vector<uint64_t> segs;
    for (const auto& e : l.extents) segs.push_back(e.segment);
    std::sort(segs.begin(), segs.end());
    segs.erase(std::unique(segs.begin(), segs.end()), segs.end());
    for (uint64_t s : segs) segments_[s].live++;
    ++it;
  }
  if (pending) {
    for (const auto& qid : order) {
      auto m = messages.find(qid);
      if (m == messages.end()) continue;
      Pending p;
      p.env = m->second;
      p.done = live_[qid].done;
      pending->push_back(std::move(p));
    }
  }
  // Segments holding nothing live are finished with (damaged ones go to corrupt/).
  for (auto it = segments_.begin(); it != segments_.end();) {
    if (it->second.live == 0) {
      ::close(it->second.fd);
      retire(it->first, it->second);
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
  if (!ids.empty()) (void)fsyncDir(dir_);
  return Status::ok();
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

void Spool::commit(Envelope env, std::shared_ptr<const std::string> tail, Callback cb) {
  Op op;
  op.kind = Op::kCommit;
  op.queue_id = env.queue_id;
  op.env = std::move(env);
  op.tail = std::move(tail);
  op.cb = std::move(cb);
  enqueue(std::move(op));
}

void Spool::abort(const std::string& queue_id) {
  Op op;
  op.kind = Op::kAbort;
  op.queue_id = queue_id;
  enqueue(std::move(op));
}

void Spool::markDone(const std::string& queue_id, std::vector<uint32_t> recipients) {
  Op op;
  op.kind = Op::kDone;
  op.queue_id = queue_id;
  op.recipients = std::move(recipients);
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

size_t Spool::liveMessages() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [k, v] : live_) n += v.committed ? 1 : 0;
  return n;
}

void Spool::writerLoop() {
  for (;;) {
    std::deque<Op> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
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
      if (queued_commits_ > 0) last_batch_commits_ = queued_commits_;   // a batch of "done" ops says nothing
      queued_commits_ = 0;
      batch.swap(queue_);
    }
    processBatch(batch);
  }
}

// Writes one batch: all records appended with writev, then a single fdatasync if any
// commit is in it, then the callbacks. Chunks need no sync of their own: the commit
// that completes their message syncs them (same file) or the segment roll did.
void Spool::processBatch(std::deque<Op>& batch) {
  Segment seg;
  uint64_t seg_id;
  {
    std::lock_guard lock(mu_);
    seg_id = active_;
    seg = segments_[seg_id];
  }
  std::vector<std::string> headers;
  headers.reserve(batch.size());
  std::vector<iovec> iov;
  struct Placed {
    uint64_t offset;
    uint64_t length;
  };
  std::vector<Placed> placed(batch.size());
  uint64_t off = seg.size;
  bool need_sync = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    std::string h;
    std::string_view data;
    switch (op.kind) {
      case Op::kChunk:
        encodeChunkHeader(h, op.queue_id, op.data);
        data = op.data;
        break;
      case Op::kCommit: break;
      case Op::kDone: encodeDone(h, op.queue_id, op.recipients); break;
      case Op::kAbort: encodeAbort(h, op.queue_id); break;
      case Op::kBarrier: break;
    }
    if (op.kind == Op::kCommit) {
      data = *op.tail;
      encodeMessageHeader(h, op.env, data);
      need_sync = true;
    }
    headers.push_back(std::move(h));
    placed[i] = {off + headers.back().size(), data.size()};
    off += headers.back().size() + data.size();
    if (!headers.back().empty()) iov.push_back({headers.back().data(), headers.back().size()});
    if (!data.empty()) iov.push_back({const_cast<char*>(data.data()), data.size()});
  }

  Status st;
  size_t idx = 0;
  while (idx < iov.size() && st) {
    int cnt = static_cast<int>(std::min<size_t>(iov.size() - idx, IOV_MAX));
    ssize_t n = ::writev(seg.fd, &iov[idx], cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      st = Status::io(fmt::format("write {}: {}", segmentPath(seg_id), std::strerror(errno)));
      break;
    }
    size_t left = static_cast<size_t>(n);
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
  if (st && need_sync && ::fdatasync(seg.fd) != 0)
    st = Status::io(fmt::format("fdatasync {}: {}", segmentPath(seg_id), std::strerror(errno)));
  if (!st) log::error("spool.write_failed").kv("reason", st.message());

  std::vector<std::pair<Callback, Status>> callbacks;
  {
    std::lock_guard lock(mu_);
    Segment& s = segments_[seg_id];
    s.size = off;
    if (st && need_sync) stats_.syncs++;
    stats_.bytes += off - seg.size;
    for (size_t i = 0; i < batch.size(); ++i) {
      Op& op = batch[i];
      switch (op.kind) {
        case Op::kChunk: {
          if (st) {
            Live& l = live_[op.queue_id];
            if (l.extents.empty() || l.extents.back().segment != seg_id) s.live++;
            l.extents.push_back({seg_id, placed[i].offset, placed[i].length});
          }
          break;
        }
        case Op::kCommit: {
          if (st) {
            Live& l = live_[op.queue_id];
            if (l.extents.empty() || l.extents.back().segment != seg_id) s.live++;
            l.extents.push_back({seg_id, placed[i].offset, placed[i].length});
            l.committed = true;
            l.done.assign(op.env.recipients.size(), false);
            l.remaining = op.env.recipients.size();
            stats_.commits++;
            if (l.remaining == 0) release(op.queue_id, l);
          } else {
            // Not durable: the transaction fails and its chunks are garbage.
            if (auto it = live_.find(op.queue_id); it != live_.end()) release(op.queue_id, it->second);
          }
          break;
        }
        case Op::kAbort: {
          if (auto it = live_.find(op.queue_id); it != live_.end() && !it->second.committed)
            release(op.queue_id, it->second);
          break;
        }
        case Op::kDone: {
          auto it = live_.find(op.queue_id);
          if (it == live_.end()) break;
          Live& l = it->second;
          for (uint32_t r : op.recipients) {
            if (r < l.done.size() && !l.done[r]) {
              l.done[r] = true;
              --l.remaining;
            }
          }
          if (l.committed && l.remaining == 0) release(op.queue_id, l);
          break;
        }
        case Op::kBarrier: break;
      }
      if (op.cb) callbacks.emplace_back(std::move(op.cb), st);
    }
    // After a failed write or sync the segment's tail is unknown (a partial record may be
    // there): nothing more is appended to it. The failed commits were refused above.
    if (!st) {
      if (Status r = openNewSegment(); !r) log::error("spool.roll_failed").kv("reason", r.message());
      else log::warn("spool.segment_abandoned").kv("segment", segmentPath(seg_id)).kv("reason", st.message());
    }
    // Roll to a new segment once this one is big enough. The old one is synced first so
    // chunks written to it are durable before any commit in the new one is acknowledged.
    if (st && s.size >= kSegmentTargetSize) {
      if (::fdatasync(s.fd) == 0) {
        if (Status r = openNewSegment(); !r) log::error("spool.roll_failed").kv("reason", r.message());
      }
    }
    collectGarbage();
    processed_ += batch.size();
  }
  drained_cv_.notify_all();
  for (auto& [cb, s] : callbacks) cb(s);
}

// REQUIRES: mu_ held.
void Spool::release(const std::string& queue_id, Live& live) {
  std::vector<uint64_t> segs;
  for (const auto& e : live.extents) segs.push_back(e.segment);
  std::sort(segs.begin(), segs.end());
  segs.erase(std::unique(segs.begin(), segs.end()), segs.end());
  for (uint64_t s : segs) {
    auto it = segments_.find(s);
    if (it != segments_.end() && it->second.live > 0) it->second.live--;
  }
  live_.erase(queue_id);
}

void Spool::retire(uint64_t id, const Segment& seg) {
  if (seg.damaged) {
    std::string to = fmt::format("{}/corrupt/seg-{:016x}.log", dir_, id);
    ::rename(segmentPath(id).c_str(), to.c_str());
    log::warn("spool.segment_quarantined").kv("file", to);
  } else {
    ::unlink(segmentPath(id).c_str());
  }
}

// REQUIRES: mu_ held. Deletes finished segments other than the active one.
void Spool::collectGarbage() {
  for (auto it = segments_.begin(); it != segments_.end();) {
    if (it->first != active_ && it->second.live == 0) {
      ::close(it->second.fd);
      retire(it->first, it->second);
      stats_.segments_deleted++;
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<std::string> Spool::readBody(const std::string& queue_id) {
  std::vector<std::pair<int, Extent>> parts;
  {
    std::lock_guard lock(mu_);
    auto it = live_.find(queue_id);
    if (it == live_.end() || !it->second.committed) return Status::notFound("no such message " + queue_id);
    for (const auto& e : it->second.extents) {
      auto s = segments_.find(e.segment);
      if (s == segments_.end()) return Status::corruption("segment gone for " + queue_id);
      parts.emplace_back(s->second.fd, e);
    }
  }
  std::string out;
  size_t total = 0;
  for (const auto& [fd, e] : parts) total += e.length;
  out.resize(total);
  size_t pos = 0;
  for (const auto& [fd, e] : parts) {
    size_t done = 0;
    while (done < e.length) {
      ssize_t n = ::pread(fd, out.data() + pos + done, e.length - done, static_cast<off_t>(e.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::io(fmt::format("read spool for {}: {}", queue_id, n < 0 ? std::strerror(errno) : "short"));
      done += static_cast<size_t>(n);
    }
    pos += e.length;
  }
  return out;
}

}  // namespace postern::spool
