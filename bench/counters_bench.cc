// Cost of counting an event, the way the server does it on every reply and rejection:
// the event table (util/counters.h, index resolved at compile time), a held registry series
// (metrics/registry.h), and, for comparison, the mutex-guarded map lookup that counters.h
// used before. Threads: contention on one counter, as many sessions hitting one rejection.
#include <benchmark/benchmark.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "metrics/registry.h"
#include "metrics/server_metrics.h"
#include "util/counters.h"

namespace {

// The registry util/counters.h had before: a lookup under a global mutex per increment.
class LockedCounters {
 public:
  void inc(std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = map_.find(name);
    if (it == map_.end()) it = map_.emplace(std::string(name), std::make_unique<std::atomic<uint64_t>>(0)).first;
    it->second->fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>, std::less<>> map_;
};

postern::Counters g_events;
LockedCounters g_locked;
postern::metrics::Registry g_registry;
postern::metrics::Counter& g_series =
    g_registry.counter("postern_bench_total", "Bench.", {{"listener", "smtp"}, {"class", "2xx"}});

void BM_EventTable(benchmark::State& state) {
  for (auto _ : state) g_events.inc("smtp.unknown_recipient");
}
BENCHMARK(BM_EventTable)->Threads(1)->Threads(2)->Threads(4);

void BM_HeldSeries(benchmark::State& state) {
  for (auto _ : state) g_series.inc();
}
BENCHMARK(BM_HeldSeries)->Threads(1)->Threads(2)->Threads(4);

void BM_LockedMapBefore(benchmark::State& state) {
  for (auto _ : state) g_locked.inc("smtp.unknown_recipient");
}
BENCHMARK(BM_LockedMapBefore)->Threads(1)->Threads(2)->Threads(4);

void BM_TlsFailureReason(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(postern::metrics::tlsFailureReason("unexpected eof while reading"));
}
BENCHMARK(BM_TlsFailureReason);

}  // namespace
