// Local delivery from the spool into Maildirs, off the event loop. Each worker takes a
// batch of messages, writes every file to tmp/, makes them durable with one sync, renames
// them into new/, syncs the touched folders once, and only then tells the spool.
// Messages are sharded over the workers by their first mailbox, so one mailbox folder is
// written by one worker (two workers on one folder fight over its lock: slower than one).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "spool/spool.h"

namespace postern::delivery {

inline constexpr size_t kMaxBatch = 64;
inline constexpr int kRetrySeconds = 30;

struct Job {
  spool::Envelope env;
  std::shared_ptr<const std::string> body;   // null: read from the spool
  std::vector<bool> done;                    // recipients already finished
  bool recovered = false;                    // after a restart: look for earlier copies first
};

struct DeliveryStats {
  uint64_t delivered = 0;     // mailbox files
  uint64_t deferred = 0;
  uint64_t failed_attempts = 0;
  uint64_t skipped_existing = 0;
};

class Deliverer {
 public:
  Deliverer(spool::Spool& spool, std::string mailbox_root, std::string hostname, unsigned threads);
  ~Deliverer();
  void submit(Job job);
  // Waits until every submitted job has been attempted once (tests, shutdown).
  void drain();
  DeliveryStats stats();

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    std::vector<std::pair<std::chrono::steady_clock::time_point, Job>> retry;
    bool busy = false;
    std::thread thread;
  };
  void workerLoop(Worker& w);
  void deliverBatch(Worker& w, std::vector<Job>& batch);
  Worker& workerFor(const Job& job);

  spool::Spool& spool_;
  std::string root_;
  std::string host_;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex shared_mu_;               // guards the two below
  std::set<std::string> known_dirs_;   // mailbox folders already created
  DeliveryStats stats_;
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
};

}  // namespace postern::delivery
