#include "delivery/deliverer.h"

#include <fmt/format.h>

#include <cerrno>
#include <map>

#include "delivery/maildir.h"
#include "log/log.h"
#include "util/thread_name.h"

namespace postern::delivery {
namespace {

// True when a copy named `name` is already in new/ or cur/ (cur/ names carry ":2,flags").
bool alreadyDelivered(io::Env& env, const MailboxDirs& d, const std::string& name) {
  if (auto t = env.typeAt(d.fresh.get(), name); t && *t == io::FileType::kFile) return true;
  auto names = env.listDir(d.cur.get());
  if (!names) return false;
  for (const auto& n : *names)
    if (n.size() >= name.size() && n.compare(0, name.size(), name) == 0 && (n.size() == name.size() || n[name.size()] == ':'))
      return true;
  return false;
}

}  // namespace

Deliverer::Deliverer(io::Env& env, spool::Spool& spool, std::string mailbox_root, std::string hostname,
                     unsigned threads, ReportFn report, MailboxExists exists)
    : env_(env), spool_(spool), root_(std::move(mailbox_root)), host_(maildirHost(hostname)),
      report_(std::move(report)), exists_(std::move(exists)) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) workers_.push_back(std::make_unique<Worker>());
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->thread = std::thread([this, i, wp = workers_[i].get()] {
      util::setThreadName("postern-deliv" + std::to_string(i));
      workerLoop(*wp);
    });
  }
}

Deliverer::~Deliverer() {
  stopping_ = true;
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    w->cv.notify_all();
  }
  for (auto& w : workers_) w->thread.join();
}

Deliverer::Worker& Deliverer::workerFor(const Job& job) {
  std::string_view key = job.env.queue_id;
  if (!job.recipients.empty() && job.recipients.front() < job.env.recipients.size())
    key = job.env.recipients[job.recipients.front()].mailbox;
  return *workers_[std::hash<std::string_view>()(key) % workers_.size()];
}

void Deliverer::submit(Job job) {
  Worker& w = workerFor(job);
  {
    std::lock_guard lock(w.mu);
    w.queue.push_back(std::move(job));
  }
  w.cv.notify_one();
}

void Deliverer::drain() {
  std::unique_lock lock(idle_mu_);
  idle_cv_.wait(lock, [&] {
    for (auto& w : workers_) {
      std::lock_guard wl(w->mu);
      if (!w->queue.empty() || w->busy) return false;
    }
    return true;
  });
}

DeliveryStats Deliverer::stats() {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void Deliverer::workerLoop(Worker& w) {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lock(w.mu);
      w.cv.wait(lock, [&] { return stopping_ || !w.queue.empty(); });
      if (stopping_) return;
      while (!w.queue.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(w.queue.front()));
        w.queue.pop_front();
      }
      w.busy = true;
    }
    deliverBatch(batch);
    {
      std::lock_guard lock(w.mu);
      w.busy = false;
    }
    std::lock_guard lock(idle_mu_);
    idle_cv_.notify_all();
  }
}

void Deliverer::deliverBatch(std::vector<Job>& batch) {
  struct File {
    size_t job;
    std::vector<uint32_t> rcpts;   // recipient indexes this file satisfies
    std::string name, mailbox;
    MailboxDirs* dirs = nullptr;
    int fd = -1;
    bool skip = false;             // an earlier copy exists
    bool failed = false;
    uint64_t reserved = 0;         // bytes counted against the mailbox's quota
  };
  std::vector<Report> reports(batch.size());
  std::vector<File> files;
  std::map<std::string, MailboxDirs> dirs;   // mailbox -> open folders, for this batch
  uint64_t temporary = 0, permanent = 0, unsafe = 0, over_quota = 0;
  auto fail = [&](size_t j, uint32_t idx, Outcome::Kind kind, std::string reason) {
    reports[j].outcomes.push_back({idx, kind, std::move(reason)});
    (kind == Outcome::kPermanent ? permanent : temporary)++;
  };
  // A file that is not delivered gives back its quota reservation (a retry must not find
  // the bytes of its own failed attempt counted).
  auto unreserve = [&](File& f) {
    if (f.reserved != 0) usage_->release(f.mailbox, f.reserved);
    f.reserved = 0;
  };
  auto failFile = [&](File& f, const std::string& reason) {
    f.failed = true;
    unreserve(f);
    for (uint32_t i : f.rcpts) fail(f.job, i, Outcome::kTemporary, reason);
  };

  auto root = env_.openAt(io::kCwd, root_, io::kRead | io::kDirectory);
  io::Fd root_guard = root ? io::Fd(env_, *root) : io::Fd();

  // 1. Write every file into tmp/.
  for (size_t j = 0; j < batch.size(); ++j) {
    Job& job = batch[j];
    reports[j].queue_id = job.env.queue_id;
    std::shared_ptr<const std::string> body = job.body;
    std::map<std::string, size_t> by_mailbox;   // mailbox -> index in files
    for (uint32_t i : job.recipients) {
      if (i >= job.env.recipients.size()) continue;
      const auto& r = job.env.recipients[i];
      if (auto it = by_mailbox.find(r.mailbox); it != by_mailbox.end()) {
        files[it->second].rcpts.push_back(i);
        continue;
      }
      if (!root) {
        fail(j, i, Outcome::kTemporary, fmt::format("mailbox root: {}", root.status().message()));
        continue;
      }
      auto name = splitMailbox(r.mailbox);
      if (!name) {
        fail(j, i, Outcome::kPermanent, name.status().message());
        continue;
      }
      if (exists_ && !exists_(r.mailbox)) {
        fail(j, i, Outcome::kPermanent, fmt::format("the mailbox {} no longer exists", r.mailbox));
        continue;
      }
      // A spam verdict at acceptance ([verify], milters) files it in the Junk folder.
      const bool junk = (job.env.flags & spool::kJunk) != 0;
      const std::string dir_key = junk ? fmt::format("{}/.{}", r.mailbox, kJunkFolder) : r.mailbox;
      auto d = dirs.find(dir_key);
      if (d == dirs.end()) {
        auto opened = openMailbox(env_, *root, *name, junk ? kJunkFolder : std::string_view());
        if (!opened) {
          int e = opened.status().sysErrno();
          if (e == ELOOP || e == ENOTDIR) {
            ++unsafe;
            log::error("delivery.unsafe_path").kv("queue_id", job.env.queue_id).kv("to", r.mailbox)
                .kv("reason", opened.status().message()).kv("action", "deferred; nothing is written through it");
          }
          fail(j, i, Outcome::kTemporary, opened.status().message());
          continue;
        }
        d = dirs.emplace(dir_key, std::move(opened.value())).first;
      }
      if (!body) {
        auto b = spool_.readBody(job.env.queue_id);
        if (!b) {
          fail(j, i, Outcome::kTemporary, b.status().message());
          continue;
        }
        body = std::make_shared<const std::string>(std::move(b.value()));
      }
      File f;
      f.job = j;
      f.rcpts.push_back(i);
      f.mailbox = r.mailbox;
      f.dirs = &d->second;
      std::string content = renderForMaildir(job.env.mail_from, r.mailbox, *body);
      f.name = maildirName(job.env.accepted_us, job.env.pid, job.env.seq, host_, content.size());
      uint64_t limit = usage_ && quota_limit_ ? quota_limit_(r.mailbox) : 0, used = 0;
      if (job.recheck && alreadyDelivered(env_, *f.dirs, f.name)) {
        f.skip = true;
      } else if (limit != 0 && !usage_->reserve(r.mailbox, content.size(), limit, &used)) {
        // Permanent, as Dovecot's LDA answers over quota (552 5.2.2): the sender is told now.
        ++over_quota;
        if (counters_) counters_->inc("delivery.over_quota");
        log::warn("delivery.over_quota").kv("queue_id", job.env.queue_id).kv("to", r.mailbox)
            .kv("size", uint64_t(content.size())).kv("usage", used).kv("quota", limit);
        for (uint32_t k : f.rcpts)
          fail(j, k, Outcome::kPermanent,
               fmt::format("mailbox full: {} is over its quota ({} of {} bytes used, the message has {})", r.mailbox,
                           used, limit, content.size()));
        continue;
      } else {
        if (limit != 0) f.reserved = content.size();
        auto fd = env_.openAt(f.dirs->tmp.get(), f.name,
                              io::kWrite | io::kCreate | io::kTruncate | io::kNoFollow, 0600);
        Status s = fd ? io::writeAll(env_, *fd, content) : fd.status();
        if (fd) f.fd = *fd;
        if (!s) {
          f.failed = true;
          unreserve(f);
          for (uint32_t k : f.rcpts) fail(j, k, Outcome::kTemporary, fmt::format("write {}/tmp/{}: {}", r.mailbox, f.name, s.message()));
          f.rcpts.clear();
        }
      }
      by_mailbox[r.mailbox] = files.size();
      files.push_back(std::move(f));
    }
  }

  // 2. One sync for the whole batch: syncfs covers every file on the mail file system;
  //    a single file is cheaper to fsync on its own.
  size_t written = 0;
  for (const auto& f : files) written += (!f.skip && !f.failed) ? 1 : 0;
  Status sync = Status::ok();
  if (written == 1) {
    for (auto& f : files)
      if (!f.skip && !f.failed) sync = env_.fsync(f.fd);
  } else if (written > 1) {
    sync = env_.syncfs(*root);
  }
  for (auto& f : files) {
    if (f.fd >= 0) (void)env_.close(f.fd);
    f.fd = -1;
  }

  // 3. Rename into new/, then make the renames durable once per folder.
  std::map<MailboxDirs*, std::vector<File*>> touched;
  for (auto& f : files) {
    if (f.skip || f.failed) continue;
    if (!sync) {
      failFile(f, fmt::format("sync: {}", sync.message()));
      continue;
    }
    if (Status s = env_.renameAt(f.dirs->tmp.get(), f.name, f.dirs->fresh.get(), f.name); !s) {
      failFile(f, fmt::format("rename into {}/new: {}", f.mailbox, s.message()));
      continue;
    }
    touched[f.dirs].push_back(&f);
  }
  for (auto& [d, fs] : touched) {
    if (Status s = env_.fsync(d->fresh.get()); !s)
      for (File* f : fs) failFile(*f, fmt::format("sync {}/new: {}", f->mailbox, s.message()));
  }

  // 4. Report.
  uint64_t delivered = 0, skipped = 0;
  for (const auto& f : files) {
    if (f.failed) continue;
    const Job& job = batch[f.job];
    for (uint32_t i : f.rcpts) reports[f.job].outcomes.push_back({i, Outcome::kDelivered, {}});
    log::info("delivery.delivered").kv("queue_id", job.env.queue_id).kv("to", f.mailbox)
        .kv("status", f.skip ? "already_delivered" : "delivered").kv("file", f.name)
        .opt("folder", (job.env.flags & spool::kJunk) ? std::string(kJunkFolder) : std::string());
    (f.skip ? skipped : delivered)++;
  }
  {
    std::lock_guard lock(stats_mu_);
    stats_.delivered += delivered;
    stats_.skipped_existing += skipped;
    stats_.temporary_failures += temporary;
    stats_.permanent_failures += permanent;
    stats_.unsafe_paths += unsafe;
    stats_.over_quota += over_quota;
  }
  for (auto& r : reports)
    if (!r.outcomes.empty()) report_(std::move(r));
}

}  // namespace postern::delivery
