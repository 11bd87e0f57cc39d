#include "delivery/deliverer.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "delivery/maildir.h"
#include "log/log.h"
#include "util/fs.h"
#include "util/thread_name.h"

namespace postern::delivery {
namespace {

// True when a copy named `name` is already in new/ or cur/ (cur/ names carry ":2,flags").
bool alreadyDelivered(const std::string& dir, const std::string& name) {
  struct stat st;
  if (::stat((dir + "/new/" + name).c_str(), &st) == 0) return true;
  DIR* d = ::opendir((dir + "/cur").c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() >= name.size() && n.substr(0, name.size()) == name &&
        (n.size() == name.size() || n[name.size()] == ':')) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

Deliverer::Deliverer(spool::Spool& spool, std::string mailbox_root, std::string hostname, unsigned threads)
    : spool_(spool), root_(std::move(mailbox_root)), host_(maildirHost(hostname)) {
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
  for (const auto& r : job.env.recipients)
    if (r.local) {
      key = r.mailbox;
      break;
    }
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
  std::lock_guard lock(shared_mu_);
  return stats_;
}

void Deliverer::workerLoop(Worker& w) {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lock(w.mu);
      w.cv.wait_for(lock, std::chrono::seconds(kRetrySeconds), [&] { return stopping_ || !w.queue.empty(); });
      if (stopping_) return;
      auto now = std::chrono::steady_clock::now();
      for (auto it = w.retry.begin(); it != w.retry.end();) {
        if (it->first <= now) {
          w.queue.push_back(std::move(it->second));
          it = w.retry.erase(it);
        } else {
          ++it;
        }
      }
      while (!w.queue.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(w.queue.front()));
        w.queue.pop_front();
      }
      if (batch.empty()) continue;
      w.busy = true;
    }
    deliverBatch(w, batch);
    {
      std::lock_guard lock(w.mu);
      w.busy = false;
    }
    std::lock_guard lock(idle_mu_);
    idle_cv_.notify_all();
  }
}

void Deliverer::deliverBatch(Worker& w, std::vector<Job>& batch) {
  struct File {
    size_t job;
    std::vector<uint32_t> rcpts;   // recipient indexes this file satisfies
    std::string dir, name, tmp_path, mailbox;
    int fd = -1;
    bool skip = false;             // an earlier copy exists
  };
  std::vector<File> files;
  std::vector<bool> job_failed(batch.size(), false);
  std::vector<std::string> job_error(batch.size());

  // 1. Write every file into tmp/.
  for (size_t j = 0; j < batch.size(); ++j) {
    Job& job = batch[j];
    if (job.done.size() != job.env.recipients.size()) job.done.assign(job.env.recipients.size(), false);
    std::shared_ptr<const std::string> body = job.body;
    std::map<std::string, size_t> by_mailbox;   // mailbox -> index in files
    for (uint32_t i = 0; i < job.env.recipients.size(); ++i) {
      const auto& r = job.env.recipients[i];
      if (job.done[i]) continue;
      if (!r.local) {
        // Outbound delivery does not exist yet: the message stays in the spool.
        log::info("delivery.deferred").kv("queue_id", job.env.queue_id).kv("to", r.mailbox)
            .kv("status", "deferred").kv("reason", "remote delivery is not available yet; kept in the spool");
        std::lock_guard lock(shared_mu_);
        stats_.deferred++;
        continue;
      }
      if (auto it = by_mailbox.find(r.mailbox); it != by_mailbox.end()) {
        files[it->second].rcpts.push_back(i);
        continue;
      }
      if (!body) {
        auto b = spool_.readBody(job.env.queue_id);
        if (!b) {
          job_failed[j] = true;
          job_error[j] = b.status().message();
          break;
        }
        body = std::make_shared<const std::string>(std::move(b.value()));
      }
      auto dir = mailboxDir(root_, r.mailbox);
      if (!dir) {
        job_failed[j] = true;
        job_error[j] = dir.status().message();
        break;
      }
      File f;
      f.job = j;
      f.rcpts.push_back(i);
      f.dir = *dir;
      f.mailbox = r.mailbox;
      bool known;
      {
        std::lock_guard lock(shared_mu_);
        known = known_dirs_.count(f.dir) > 0;
      }
      if (!known) {
        Status s = makeDirs(f.dir + "/tmp", 0700);
        if (s) s = makeDirs(f.dir + "/new", 0700);
        if (s) s = makeDirs(f.dir + "/cur", 0700);
        if (!s) {
          job_failed[j] = true;
          job_error[j] = s.message();
          break;
        }
        std::lock_guard lock(shared_mu_);
        known_dirs_.insert(f.dir);
      }
      std::string content = renderForMaildir(job.env.mail_from, r.mailbox, *body);
      f.name = maildirName(job.env.accepted_us, job.env.pid, job.env.seq, host_, content.size());
      f.tmp_path = f.dir + "/tmp/" + f.name;
      if (job.recovered && alreadyDelivered(f.dir, f.name)) {
        f.skip = true;
      } else {
        f.fd = ::open(f.tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        Status s = f.fd < 0 ? Status::io(fmt::format("create {}: {}", f.tmp_path, std::strerror(errno)))
                            : writeAll(f.fd, content.data(), content.size());
        if (!s) {
          if (f.fd >= 0) ::close(f.fd);
          ::unlink(f.tmp_path.c_str());
          job_failed[j] = true;
          job_error[j] = s.message();
          break;
        }
      }
      by_mailbox[r.mailbox] = files.size();
      files.push_back(std::move(f));
    }
  }

  // 2. One sync for the whole batch: syncfs covers every file on the mail file system;
  //    a single file is cheaper to fsync on its own.
  size_t written = 0;
  for (const auto& f : files) written += (!f.skip && !job_failed[f.job]) ? 1 : 0;
  bool sync_ok = true;
  if (written == 1) {
    for (auto& f : files)
      if (!f.skip && !job_failed[f.job] && ::fsync(f.fd) != 0) sync_ok = false;
  } else if (written > 1) {
    int root_fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    sync_ok = root_fd >= 0 && ::syncfs(root_fd) == 0;
    if (root_fd >= 0) ::close(root_fd);
  }
  for (auto& f : files)
    if (f.fd >= 0) ::close(f.fd);

  // 3. Rename into new/, then make the renames durable once per folder.
  std::set<std::string> touched;
  for (auto& f : files) {
    if (f.skip || job_failed[f.job]) continue;
    if (!sync_ok) {
      job_failed[f.job] = true;
      job_error[f.job] = "sync failed";
      continue;
    }
    std::string final_path = f.dir + "/new/" + f.name;
    if (::rename(f.tmp_path.c_str(), final_path.c_str()) != 0) {
      job_failed[f.job] = true;
      job_error[f.job] = fmt::format("rename {}: {}", f.tmp_path, std::strerror(errno));
      continue;
    }
    touched.insert(f.dir + "/new");
  }
  for (const auto& d : touched) {
    if (Status s = fsyncDir(d); !s) {
      for (auto& f : files)
        if (f.dir + "/new" == d) {
          job_failed[f.job] = true;
          job_error[f.job] = s.message();
        }
    }
  }

  // 4. Report and tell the spool.
  std::vector<std::vector<uint32_t>> finished(batch.size());
  for (const auto& f : files) {
    if (job_failed[f.job]) continue;
    const Job& job = batch[f.job];
    finished[f.job].insert(finished[f.job].end(), f.rcpts.begin(), f.rcpts.end());
    log::info("delivery.delivered").kv("queue_id", job.env.queue_id).kv("to", f.mailbox)
        .kv("status", f.skip ? "already_delivered" : "delivered").kv("file", f.name);
    std::lock_guard lock(shared_mu_);
    if (f.skip) stats_.skipped_existing++;
    else stats_.delivered++;
  }
  for (size_t j = 0; j < batch.size(); ++j) {
    if (!finished[j].empty()) {
      for (uint32_t i : finished[j]) batch[j].done[i] = true;
      spool_.markDone(batch[j].env.queue_id, finished[j]);
    }
    if (job_failed[j]) {
      log::error("delivery.failed").kv("queue_id", batch[j].env.queue_id).kv("status", "retry")
          .kv("reason", job_error[j]).kv("retry_in", uint64_t(kRetrySeconds));
      {
        std::lock_guard lock(shared_mu_);
        stats_.failed_attempts++;
        // The folder may have gone (removed by hand): check it again next time.
        for (const auto& r : batch[j].env.recipients)
          if (auto d = mailboxDir(root_, r.mailbox); d) known_dirs_.erase(*d);
      }
      batch[j].recovered = true;   // a partial attempt may have left copies behind
      std::lock_guard lock(w.mu);
      w.retry.emplace_back(std::chrono::steady_clock::now() + std::chrono::seconds(kRetrySeconds), std::move(batch[j]));
    }
  }
}

}  // namespace postern::delivery
