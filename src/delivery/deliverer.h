// Local delivery from the spool into Maildirs, off the event loop. Each worker takes a
// batch of messages, writes every file to tmp/, makes them durable with one sync, renames
// them into new/, syncs the touched folders once, and only then tells the spool.
#pragma once

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
  void workerLoop();
  void deliverBatch(std::vector<Job>& batch);

  spool::Spool& spool_;
  std::string root_;
  std::string host_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Job> queue_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, Job>> retry_;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::set<std::string> known_dirs_;   // mailbox folders already created
  DeliveryStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace postern::delivery
