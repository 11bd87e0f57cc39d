// Local delivery into Maildirs, off the event loop. Each worker takes a batch of jobs,
// writes every file to tmp/, makes them durable with one sync, renames them into new/,
// syncs the touched folders once, and only then reports the outcome (the queue records it
// in the spool and decides about retries and bounces: the deliverer keeps no schedule).
//
// Safety: every folder below the mailbox root is opened one component at a time with
// O_NOFOLLOW and O_DIRECTORY (openat), and files are created relative to those handles,
// so a symbolic link planted anywhere below the root is never followed; such a path, or
// one that is not a folder, is a logged, counted temporary failure.
//
// Messages are sharded over the workers by their first mailbox, so one mailbox folder is
// written by one worker (two workers on one folder fight over its lock: slower than one).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "delivery/quota_usage.h"
#include "io/env.h"
#include "util/counters.h"
#include "spool/spool.h"

namespace postern::delivery {

inline constexpr size_t kMaxBatch = 64;

struct Job {
  spool::Envelope env;
  std::shared_ptr<const std::string> body;   // null: read from the spool
  std::vector<uint32_t> recipients;          // indexes of the local recipients to deliver
  bool recheck = false;                      // an earlier attempt may have left copies: look first
};

struct Outcome {
  enum Kind : uint8_t {
    kDelivered,   // written now, or found from an earlier attempt
    kTemporary,   // try again later (disk, permissions, path not a folder)
    kPermanent,   // will never work (mailbox no longer exists, unsafe address)
  };
  uint32_t index;
  Kind kind;
  std::string reason;   // for failures: what went wrong, for the log and the bounce
  // Remote delivery (remote.h) only: the enhanced status code (RFC 3463) of the outcome,
  // the server that answered ("mx.example.org[192.0.2.1]:25") and the TLS in effect.
  std::string dsn;
  std::string relay;
  std::string tls;
  std::string reply;   // the server's reply when it decided ("550 5.1.1 no such user"); empty: no reply
  bool dsn_passed = false;   // the server took the RFC 3461 parameters (it offered DSN): it notifies now
  std::string tls_policy;    // what required TLS for this delivery: "mta-sts"; empty: the route alone
};

struct Report {
  std::string queue_id;
  std::vector<Outcome> outcomes;
};

struct DeliveryStats {
  uint64_t delivered = 0;          // mailbox files
  uint64_t temporary_failures = 0;
  uint64_t permanent_failures = 0;
  uint64_t skipped_existing = 0;   // found from an earlier attempt
  uint64_t unsafe_paths = 0;       // a link or a non-folder where a mailbox folder belongs
  uint64_t over_quota = 0;         // refused: the mailbox would exceed its quota
};

class Deliverer {
 public:
  using ReportFn = std::function<void(Report)>;
  // Is this mailbox (user@domain) still an account here? Called on the worker threads.
  using MailboxExists = std::function<bool(const std::string&)>;

  Deliverer(io::Env& env, spool::Spool& spool, std::string mailbox_root, std::string hostname, unsigned threads,
            ReportFn report, MailboxExists exists = {});
  ~Deliverer();
  // The quota of a mailbox in bytes (0: none). Called on the worker threads.
  using QuotaLimit = std::function<uint64_t(const std::string&)>;
  // Enforces quotas: a message that would take its mailbox past its limit is a permanent
  // failure ("5.2.2 mailbox full", bounced by the queue); delivered bytes are added to
  // `usage`. REQUIRES: called before the first submit(); `usage` and `counters` outlive *this.
  void setQuota(QuotaUsage& usage, QuotaLimit limit, Counters* counters = nullptr) {
    usage_ = &usage;
    quota_limit_ = std::move(limit);
    counters_ = counters;
  }
  void submit(Job job);
  // Waits until every submitted job has been attempted once (tests, shutdown).
  void drain();
  DeliveryStats stats();

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> queue;
    bool busy = false;
    std::thread thread;
  };
  void workerLoop(Worker& w);
  void deliverBatch(std::vector<Job>& batch);
  Worker& workerFor(const Job& job);

  io::Env& env_;
  spool::Spool& spool_;
  std::string root_;
  std::string host_;
  ReportFn report_;
  MailboxExists exists_;
  QuotaUsage* usage_ = nullptr;
  QuotaLimit quota_limit_;
  Counters* counters_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex stats_mu_;
  DeliveryStats stats_;
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
};

}  // namespace postern::delivery
