// Microbenchmarks for Maildir delivery (deliverer.h, maildir.h): file naming and rendering
// (CPU only), and end-to-end delivery of 4 KiB messages into one Maildir on the real disk
// (POSTERN_BENCH_DIR, default /var/tmp): jobs are submitted as fast as the loop runs and the
// figure is files made durable in new/ per second, batching included.
#include <benchmark/benchmark.h>

#include "bench_dir.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "delivery/deliverer.h"
#include "delivery/maildir.h"
#include "log/log.h"
#include "spool/spool.h"

namespace {

using namespace postern;

using bench::benchDir;
using bench::kMessageSize;

std::string message() {
  std::string m = "From: <sender@sender.test>\r\nTo: <bench@example.test>\r\nSubject: bench\r\n\r\n";
  while (m.size() < kMessageSize) m += "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx\r\n";
  m.resize(kMessageSize);
  return m;
}

void BM_MaildirName(benchmark::State& state) {
  std::string host = delivery::maildirHost("mail.example.test");
  uint64_t n = 0;
  for (auto _ : state) {
    auto name = delivery::maildirName(1'700'000'000'000'000ull + n, 4242, n, host, 4096);
    benchmark::DoNotOptimize(name);
    ++n;
  }
}
BENCHMARK(BM_MaildirName);

void BM_RenderForMaildir(benchmark::State& state) {
  std::string m = message();
  for (auto _ : state) {
    auto out = delivery::renderForMaildir("sender@sender.test", "bench@example.test", m);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_RenderForMaildir);

// Delivery throughput with `state.range(0)` worker threads.
void BM_MaildirDeliver(benchmark::State& state) {
  log::init(log::Format::kText, log::Level::kWarn);   // one info line per file would be measured too
  std::string dir = benchDir("maildir");
  std::vector<spool::Pending> pending;
  auto sp = spool::Spool::open(io::posixEnv(), dir + "/spool", &pending);
  if (!sp) {
    state.SkipWithError(sp.status().message().c_str());
    return;
  }
  auto body = std::make_shared<const std::string>(message());
  uint64_t n = 0;
  {
    std::filesystem::create_directories(dir + "/mail");
    std::atomic<uint64_t> failures{0};
    delivery::Deliverer d(io::posixEnv(), **sp, dir + "/mail", "mail.example.test", static_cast<unsigned>(state.range(0)),
                          [&](delivery::Report r) {
                            for (const auto& o : r.outcomes) failures += o.kind != delivery::Outcome::kDelivered;
                          });
    for (auto _ : state) {
      delivery::Job job;
      job.env.queue_id = fmt::format("Q{:012x}", n);
      job.env.accepted_us = 1'700'000'000'000'000ull + n;
      job.env.pid = 1;
      job.env.seq = n;
      job.env.mail_from = "sender@sender.test";
      job.env.recipients.push_back({"bench@example.test", "bench@example.test", true});
      job.env.size = body->size();
      job.body = body;
      job.recipients = {0};
      d.submit(std::move(job));
      ++n;
      // Keep the queue short so the loop measures delivery, not queueing.
      if (n % delivery::kMaxBatch == 0) d.drain();
    }
    d.drain();
    auto st = d.stats();
    state.counters["files/s"] = benchmark::Counter(static_cast<double>(st.delivered), benchmark::Counter::kIsRate);
    if (failures) state.SkipWithError("delivery failed");
  }
  sp->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_MaildirDeliver)->Arg(1)->Arg(2)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMicrosecond);

}  // namespace
