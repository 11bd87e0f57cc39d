// Microbenchmarks for the spool's group commit (spool.h, record format in record.h): how many
// 4 KiB messages per second become durable with C commits outstanding at once (C concurrent
// SMTP sessions), and how many commits share each fdatasync. Runs on the real disk:
// POSTERN_BENCH_DIR (default /var/tmp) decides where the spool goes.
#include <benchmark/benchmark.h>

#include "bench_dir.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "spool/record.h"
#include "io/env.h"
#include "queue/queue.h"
#include "spool/spool.h"

namespace {

using namespace postern;

using bench::benchDir;
using bench::kMessageSize;

spool::Envelope envelope(uint64_t n) {
  spool::Envelope env;
  env.queue_id = fmt::format("Q{:012x}", n);
  env.accepted_us = 1'700'000'000'000'000ull + n;
  env.pid = 1;
  env.seq = n;
  env.mail_from = "sender@sender.test";
  env.recipients.push_back({"bench@example.test", "bench@example.test", true});
  env.size = kMessageSize;
  return env;
}

// Resident set size of this process in KiB (from /proc).
long rssKiB() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Commits with `state.range(0)` outstanding at once; each iteration is one durable commit.
void BM_SpoolCommit(benchmark::State& state) {
  const int64_t concurrent = state.range(0);
  const bool with_chunk = state.range(1) != 0;   // body split: one chunk + the tail
  spool::SpoolOptions options;
  options.commit_wait = std::chrono::microseconds(state.range(2));   // the commit window
  std::string dir = benchDir("spool");
  std::vector<spool::Pending> pending;
  auto sp = spool::Spool::open(io::posixEnv(), dir, &pending, options);
  if (!sp) {
    state.SkipWithError(sp.status().message().c_str());
    return;
  }
  auto& spool = **sp;
  auto body = std::make_shared<const std::string>(with_chunk ? kMessageSize / 2 : kMessageSize, 'x');
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  std::atomic<uint64_t> failures{0};
  uint64_t n = 0;
  auto before = spool.stats();
  for (auto _ : state) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding < concurrent; });
      ++outstanding;
    }
    spool::Envelope env = envelope(n++);
    std::string qid = env.queue_id;
    if (with_chunk) spool.appendChunk(qid, std::string(kMessageSize / 2, 'y'), nullptr);
    spool.commit(std::move(env), body, [&, qid](Status s) {
      if (!s) failures++;
      // Delivered at once: the space can be reclaimed (as the Deliverer does).
      spool.updateState(qid, {{0, {spool::RcptStatus::kDelivered, 0, 0, {}}}});
      std::lock_guard lock(mu);
      --outstanding;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
  }
  spool.drain();
  auto after = spool.stats();
  uint64_t commits = after.commits - before.commits, syncs = after.syncs - before.syncs;
  state.counters["commits/s"] = benchmark::Counter(static_cast<double>(commits), benchmark::Counter::kIsRate);
  state.counters["commits/fsync"] = syncs ? static_cast<double>(commits) / static_cast<double>(syncs) : 0;
  state.counters["fsync/s"] = benchmark::Counter(static_cast<double>(syncs), benchmark::Counter::kIsRate);
  state.counters["windows"] = static_cast<double>(after.windows - before.windows);
  if (failures) state.SkipWithError("commit failed");
  sp->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SpoolCommit)
    ->ArgNames({"outstanding", "chunk", "wait_us"})
    ->ArgsProduct({{1, 4, 20, 100}, {0}, {0, 250, 1000}})
    ->Args({20, 1, 1000})
    ->UseRealTime()
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond);

// The same with real committer threads (one blocking committer per thread, as a
// thread-per-session server would be).
void BM_SpoolCommitThreads(benchmark::State& state) {
  static std::unique_ptr<spool::Spool> spool;
  static std::string dir;
  static std::atomic<uint64_t> seq{0};
  if (state.thread_index() == 0) {
    // The previous run's spool (other thread count) goes first; the last one at exit.
    if (spool) spool.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
    static const bool cleanup_registered = std::atexit([] {
      spool.reset();
      std::filesystem::remove_all(dir);
    }) == 0;
    (void)cleanup_registered;
    dir = benchDir("spool-threads");
    std::vector<spool::Pending> pending;
    auto sp = spool::Spool::open(io::posixEnv(), dir, &pending);
    if (sp) spool = std::move(*sp);
  }
  auto body = std::make_shared<const std::string>(kMessageSize, 'x');
  // Google Benchmark starts the timed loop of all threads together, after thread 0's setup.
  for (auto _ : state) {
    if (!spool) {
      state.SkipWithError("spool open failed");
      break;
    }
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    spool::Envelope env = envelope(seq++);
    std::string qid = env.queue_id;
    spool->commit(std::move(env), body, [&](Status) {
      std::lock_guard lock(mu);
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    lock.unlock();
    spool->updateState(qid, {{0, {spool::RcptStatus::kDelivered, 0, 0, {}}}});
  }
  state.counters["commits/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  if (state.thread_index() == 0) {
    auto st = spool ? spool->stats() : spool::SpoolStats{};
    state.counters["commits/fsync(total)"] = st.syncs ? static_cast<double>(st.commits) / static_cast<double>(st.syncs) : 0;
  }
}
BENCHMARK(BM_SpoolCommitThreads)->ThreadRange(1, 16)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMicrosecond);

// Record encoding alone (CPU): header + CRC-32C over a 4 KiB message.
void BM_SpoolEncodeMessage(benchmark::State& state) {
  spool::Envelope env = envelope(1);
  std::string body(kMessageSize, 'x');
  for (auto _ : state) {
    std::string out = spool::encodeMessage(0x5eed, env, body);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kMessageSize));
}
BENCHMARK(BM_SpoolEncodeMessage);

// Restart with `state.range(0)` deferred messages in the queue (4 KiB each, next attempt an
// hour away): the time to recover the spool and rebuild the schedule, and the memory that
// takes (resident set growth).
void BM_SpoolRestartDeferred(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::string dir = benchDir("spool-restart");
  {
    auto sp = spool::Spool::open(io::posixEnv(), dir, nullptr);
    if (!sp) {
      state.SkipWithError(sp.status().message().c_str());
      return;
    }
    auto body = std::make_shared<const std::string>(kMessageSize, 'x');
    std::mutex mu;
    std::condition_variable cv;
    int64_t outstanding = 0;
    uint64_t later = queue::Queue::nowUs() + 3600ull * 1'000'000;
    for (int64_t i = 0; i < n; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return outstanding < 200; });
        ++outstanding;
      }
      spool::Envelope env = envelope(static_cast<uint64_t>(i));
      env.recipients[0].local = false;
      std::string qid = env.queue_id;
      (*sp)->commit(std::move(env), body, [&, qid, later](Status) {
        (*sp)->updateState(qid, {{0, {spool::RcptStatus::kPending, 1, later, "deferred for the benchmark"}}});
        std::lock_guard lock(mu);
        --outstanding;
        cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
    lock.unlock();
    (*sp)->drain();
  }
  for (auto _ : state) {
    long before = rssKiB();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<spool::Pending> pending;
    auto sp = spool::Spool::open(io::posixEnv(), dir, &pending);
    if (!sp) {
      state.SkipWithError(sp.status().message().c_str());
      break;
    }
    queue::Queue q(**sp, {}, [](const std::string&) { return std::nullopt; },
                   [] { return spool::newEnvelope(0); });
    q.recovered(pending);
    auto t1 = std::chrono::steady_clock::now();
    state.counters["recover_ms"] = std::chrono::duration<double, std::milli>(t1 - t0).count();
    state.counters["messages"] = static_cast<double>(pending.size());
    state.counters["scheduled"] = static_cast<double>(q.scheduled());
    state.counters["rss_growth_MiB"] = static_cast<double>(rssKiB() - before) / 1024.0;
    state.counters["spool_MiB"] = static_cast<double>((*sp)->usage().disk_bytes) / (1024.0 * 1024.0);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SpoolRestartDeferred)->Arg(100000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
