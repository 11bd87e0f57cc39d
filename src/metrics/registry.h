// Metric families for the /metrics endpoint, written in the Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Series are registered once (start-up, or the first use on a cold path) under the registry's
// lock and live as long as the registry; callers keep the returned reference. Updating a
// series is one relaxed atomic operation and never takes a lock. Values kept elsewhere (queue
// size, spool statistics, certificates) are read at scrape time by a collector.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace postern::metrics {

// Label name/value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type : uint8_t { kCounter, kGauge, kHistogram };

class Counter {
 public:
  void inc(uint64_t by = 1) { v_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t by) { v_.fetch_add(by, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Cumulative buckets with fixed upper bounds (plus +Inf), a sum and a count.
class Histogram {
 public:
  // REQUIRES: bounds strictly increasing and finite.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket counts, not cumulative; the last entry is the +Inf bucket.
  std::vector<uint64_t> counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// What a collector writes: one sample of its family per call.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void sample(const Labels& labels, double value) = 0;
};

// Text format helpers, exposed for tests.
std::string escapeLabelValue(std::string_view v);  // \\ \" \n
std::string escapeHelp(std::string_view v);        // \\ \n
std::string formatValue(double v);                 // shortest exact form, +Inf, -Inf, NaN
// `{a="x",b="y"}`, or "" without labels.
std::string formatLabels(const Labels& labels);
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

class Registry {
 public:
  using Collector = std::function<void(Sink&)>;

  // The series of family `name` with these labels, created on first use. Registering the
  // same name with another type is a programming error (asserted).
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                       const Labels& labels = {});
  // A family (counter or gauge) whose samples `fn` writes at each scrape. `fn` runs under
  // the registry's lock: it must not register metrics.
  void collector(std::string_view name, std::string_view help, Type type, Collector fn);

  // Every family, sorted by name, in text format 0.0.4.
  std::string render() const;

 private:
  struct Series {
    std::string labels;  // `a="x",b="y"` (no braces)
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Series> series;  // by labels text
    Collector collect;
  };
  Series& series(std::string_view name, std::string_view help, Type type, const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace postern::metrics
