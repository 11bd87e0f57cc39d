// Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then one line per sample,
// `name{label="value",...} value`; histograms as `_bucket{le="..."}` (cumulative, ending
// with le="+Inf"), `_sum` and `_count`.
#include "metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace postern::metrics {

namespace {

std::string_view typeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

std::string labelsText(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    assert(validLabelName(k));
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    out += escapeLabelValue(v);
    out += '"';
  }
  return out;
}

void appendSample(std::string& out, std::string_view name, std::string_view labels, std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

class StringSink : public Sink {
 public:
  StringSink(std::string& out, std::string_view name) : out_(out), name_(name) {}
  void sample(const Labels& labels, double value) override {
    appendSample(out_, name_, labelsText(labels), formatValue(value));
  }

 private:
  std::string& out_;
  std::string_view name_;
};

}  // namespace

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string formatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integers up to 2^53 exactly, without an exponent; anything else in its shortest form.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return fmt::format("{}", int64_t(v));
  return fmt::format("{}", v);
}

std::string formatLabels(const Labels& labels) {
  std::string t = labelsText(labels);
  return t.empty() ? t : "{" + t + "}";
}

bool validMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool validLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  assert(std::is_sorted(bounds_.begin(), bounds_.end()));
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // Bucket i holds bounds_[i-1] < v <= bounds_[i] ("le" is inclusive).
  size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

Registry::Series& Registry::series(std::string_view name, std::string_view help, Type type, const Labels& labels) {
  assert(validMetricName(name));
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}}).first;
  assert(it->second.type == type && !it->second.collect);
  std::string key = labelsText(labels);
  auto& s = it->second.series[key];
  if (s.labels.empty()) s.labels = key;
  return s;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = series(name, help, Type::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = series(name, help, Type::kGauge, labels);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                               const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = series(name, help, Type::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

void Registry::collector(std::string_view name, std::string_view help, Type type, Collector fn) {
  assert(validMetricName(name) && type != Type::kHistogram);
  std::lock_guard lock(mu_);
  auto [it, inserted] = families_.emplace(std::string(name), Family{type, std::string(help), {}, std::move(fn)});
  assert(inserted);
  (void)it;
}

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escapeHelp(f.help), name, typeName(f.type));
    if (f.collect) {
      StringSink sink(out, name);
      f.collect(sink);
      continue;
    }
    for (const auto& [key, s] : f.series) {
      if (s.counter) appendSample(out, name, s.labels, fmt::format("{}", s.counter->value()));
      if (s.gauge) appendSample(out, name, s.labels, fmt::format("{}", s.gauge->value()));
      if (s.histogram) {
        const Histogram& h = *s.histogram;
        std::vector<uint64_t> counts = h.counts();
        std::string prefix = s.labels.empty() ? std::string() : s.labels + ",";
        uint64_t cumulative = 0;
        for (size_t i = 0; i < counts.size(); ++i) {
          cumulative += counts[i];
          std::string le = i < h.bounds().size() ? formatValue(h.bounds()[i]) : "+Inf";
          appendSample(out, name + "_bucket", prefix + "le=\"" + le + "\"", fmt::format("{}", cumulative));
        }
        appendSample(out, name + "_sum", s.labels, formatValue(h.sum()));
        appendSample(out, name + "_count", s.labels, fmt::format("{}", cumulative));
      }
    }
  }
  return out;
}

}  // namespace postern::metrics
