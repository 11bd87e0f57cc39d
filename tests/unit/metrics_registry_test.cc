// The metrics registry and its text exposition (Prometheus format 0.0.4), the event counter
// table (util/counters.h), and the classification helpers of metrics/server_metrics.h.
#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "metrics/server_metrics.h"
#include "util/counters.h"

namespace postern::metrics {
namespace {

TEST(MetricsRegistry, CounterFamilyWithLabelsRendersHelpTypeAndSamples) {
  Registry r;
  Counter& a = r.counter("postern_test_total", "A test counter.", {{"listener", "smtp"}, {"outcome", "served"}});
  Counter& b = r.counter("postern_test_total", "A test counter.", {{"listener", "submissions"}, {"outcome", "served"}});
  a.inc();
  a.inc(2);
  b.inc();
  EXPECT_EQ(r.render(),
            "# HELP postern_test_total A test counter.\n"
            "# TYPE postern_test_total counter\n"
            "postern_test_total{listener=\"smtp\",outcome=\"served\"} 3\n"
            "postern_test_total{listener=\"submissions\",outcome=\"served\"} 1\n");
}

TEST(MetricsRegistry, SameNameAndLabelsGiveTheSameSeries) {
  Registry r;
  Counter& a = r.counter("x_total", "h", {{"k", "v"}});
  Counter& b = r.counter("x_total", "h", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  Gauge& g1 = r.gauge("g", "h");
  Gauge& g2 = r.gauge("g", "h");
  EXPECT_EQ(&g1, &g2);
}

TEST(MetricsRegistry, FamiliesAreSortedAndGaugesMayBeNegative) {
  Registry r;
  r.gauge("zeta", "Last.").set(-5);
  r.gauge("alpha", "First.").add(7);
  EXPECT_EQ(r.render(),
            "# HELP alpha First.\n# TYPE alpha gauge\nalpha 7\n"
            "# HELP zeta Last.\n# TYPE zeta gauge\nzeta -5\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  Histogram& h = r.histogram("lat_seconds", "Latency.", {0.001, 0.01, 0.1});
  h.observe(0.0005);
  h.observe(0.001);  // le is inclusive
  h.observe(0.05);
  h.observe(3);
  EXPECT_EQ(r.render(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.001\"} 2\n"
            "lat_seconds_bucket{le=\"0.01\"} 2\n"
            "lat_seconds_bucket{le=\"0.1\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 3.0515\n"
            "lat_seconds_count 4\n");
}

TEST(MetricsRegistry, HistogramWithLabelsPutsLeLast) {
  Registry r;
  r.histogram("h_seconds", "H.", {1}, {{"op", "commit"}}).observe(0.5);
  std::string out = r.render();
  EXPECT_NE(out.find("h_seconds_bucket{op=\"commit\",le=\"1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_seconds_bucket{op=\"commit\",le=\"+Inf\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_seconds_sum{op=\"commit\"} 0.5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("h_seconds_count{op=\"commit\"} 1\n"), std::string::npos) << out;
}

TEST(MetricsRegistry, CollectorWritesItsSamplesAtRenderTime) {
  Registry r;
  int calls = 0;
  r.collector("queue_messages", "Queue.", Type::kGauge, [&](Sink& s) {
    ++calls;
    s.sample({}, 12);
    s.sample({{"kind", "a\"b"}}, 0.25);
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(r.render(),
            "# HELP queue_messages Queue.\n# TYPE queue_messages gauge\n"
            "queue_messages 12\nqueue_messages{kind=\"a\\\"b\"} 0.25\n");
  EXPECT_EQ(calls, 1);
}

TEST(MetricsRegistry, Escaping) {
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  EXPECT_EQ(formatLabels({}), "");
  EXPECT_EQ(formatLabels({{"file", "/etc/x \"y\".pem"}}), "{file=\"/etc/x \\\"y\\\".pem\"}");
}

TEST(MetricsRegistry, FormatValue) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(42), "42");
  EXPECT_EQ(formatValue(-86400), "-86400");
  EXPECT_EQ(formatValue(0.0025), "0.0025");
  EXPECT_EQ(formatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(formatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(formatValue(0.0 / 0.0), "NaN");
}

TEST(MetricsRegistry, NameValidation) {
  EXPECT_TRUE(validMetricName("postern_connections_total"));
  EXPECT_TRUE(validMetricName("a:b_c1"));
  EXPECT_FALSE(validMetricName(""));
  EXPECT_FALSE(validMetricName("1abc"));
  EXPECT_FALSE(validMetricName("smtp.accepted"));
  EXPECT_TRUE(validLabelName("listener"));
  EXPECT_FALSE(validLabelName("__name__"));
  EXPECT_FALSE(validLabelName("a-b"));
  EXPECT_FALSE(validLabelName("a:b"));
}

TEST(MetricsRegistry, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  Counter& c = r.counter("c_total", "C.");
  Histogram& h = r.histogram("h", "H.", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c.inc();
        h.observe(1);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 400000u);
  EXPECT_EQ(h.counts()[1], 400000u);
  EXPECT_DOUBLE_EQ(h.sum(), 400000.0);
}

TEST(EventCounters, LiteralNamesResolveAtCompileTime) {
  constexpr EventId e = "smtp.accepted";
  static_assert(e.name() == "smtp.accepted");
  Counters c;
  c.inc("smtp.accepted");
  c.inc(e, 2);
  EXPECT_EQ(c.value(e), 3u);
  EXPECT_EQ(c.value("smtp.accepted"), 3u);
  EXPECT_EQ(c.value("smtp.auth_failed"), 0u);
}

TEST(EventCounters, FindAtRunTime) {
  for (size_t i = 0; i < kEventCount; ++i) {
    auto e = Counters::find(kEventNames[i]);
    ASSERT_TRUE(e) << kEventNames[i];
    EXPECT_EQ(e->index(), i);
  }
  EXPECT_FALSE(Counters::find("smtp.nonexistent"));
  EXPECT_FALSE(Counters::find(""));
  EXPECT_EQ(Counters().valueByName("no.such.event"), 0u);
  Counters c;
  c.inc("smtp.auth_failed");
  EXPECT_EQ(c.valueByName("smtp.auth_failed"), 1u);
}

TEST(ServerMetricsHelpers, ProxyErrorKinds) {
  EXPECT_EQ(proxyErrorKind("proxy.malformed"), 0);
  EXPECT_EQ(kProxyErrorKinds[size_t(proxyErrorKind("proxy.header_missing"))], "missing");
  EXPECT_EQ(kProxyErrorKinds[size_t(proxyErrorKind("proxy.unexpected_header"))], "unexpected_header");
  EXPECT_EQ(proxyErrorKind("proxy.accepted"), -1);
  EXPECT_EQ(proxyErrorKind("smtp.accepted"), -1);
}

TEST(ServerMetricsHelpers, TlsFailureReasons) {
  struct Case {
    const char* openssl;
    std::string_view reason;
  };
  const Case cases[] = {
      {"wrong version number", "plaintext"},
      {"http request", "plaintext"},
      {"no shared cipher", "no_shared_cipher"},
      {"unsupported protocol", "protocol_version"},
      {"tlsv1 alert unknown ca", "peer_alert"},
      {"sslv3 alert bad certificate", "certificate"},
      {"unexpected eof while reading", "eof"},
      {"the peer closed the connection during the handshake", "eof"},
      {"handshake timed out", "timeout"},
      {"Operation canceled", "timeout"},
      {"something new", "other"},
  };
  for (const auto& c : cases) EXPECT_EQ(kTlsFailureReasons[tlsFailureReason(c.openssl)], c.reason) << c.openssl;
}

}  // namespace
}  // namespace postern::metrics
