// Microbenchmarks for the SMTP syntax layer (RFC 5321 §4.1.1 command parsing, §2.3.8 line
// framing, §4.5.2 DATA unstuffing, RFC 3030 BDAT text checks).
#include <benchmark/benchmark.h>

#include <string>

#include "smtp/proto/command.h"
#include "smtp/proto/data_scanner.h"
#include "smtp/proto/line.h"

namespace {

using namespace postern::smtp;

void benchParse(benchmark::State& state, std::string_view line) {
  for (auto _ : state) {
    auto r = parseCommand(line);
    benchmark::DoNotOptimize(r);
  }
}

void BM_ParseMail(benchmark::State& state) {
  benchParse(state, "MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME");
}
BENCHMARK(BM_ParseMail);

void BM_ParseRcpt(benchmark::State& state) {
  benchParse(state, "RCPT TO:<x@y.z>");
}
BENCHMARK(BM_ParseRcpt);

void BM_ParseEhlo(benchmark::State& state) {
  benchParse(state, "EHLO mail.example.com");
}
BENCHMARK(BM_ParseEhlo);

void BM_NextLinePipelined(benchmark::State& state) {
  const std::string buf = "MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<x@y.z>\r\nDATA\r\n";
  for (auto _ : state) {
    std::string_view b = buf;
    while (!b.empty()) {
      LineResult r = nextLine(b);
      benchmark::DoNotOptimize(r);
      b.remove_prefix(r.consumed);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_NextLinePipelined);

// 1 MiB of 76-character lines (78 with CRLF), with an occasional stuffed dot.
std::string makeText(bool with_dots) {
  std::string s;
  const std::string line = std::string(76, 'x');
  size_t n = 0;
  while (s.size() < (1u << 20)) {
    if (with_dots && n++ % 50 == 0) s += "..";
    s += line;
    s += "\r\n";
  }
  return s;
}

void BM_DataScanner(benchmark::State& state) {
  const std::string text = makeText(state.range(0) != 0) + ".\r\n";
  std::string out;
  out.reserve(text.size());
  for (auto _ : state) {
    out.clear();
    DataScanner s(BareNewlines::kReject);
    auto r = s.feed(text, out);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_DataScanner)->Arg(0)->Arg(1)->ArgName("dots");

// The same text in 4 KiB reads (the session's read size).
void BM_DataScannerChunked(benchmark::State& state) {
  const std::string text = makeText(true) + ".\r\n";
  std::string out;
  out.reserve(text.size());
  for (auto _ : state) {
    out.clear();
    DataScanner s(BareNewlines::kNormalize);
    std::string_view in = text;
    while (!in.empty()) {
      auto r = s.feed(in.substr(0, 4096), out);
      in.remove_prefix(r.consumed);
      if (r.done) break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_DataScannerChunked);

void BM_TextChecker(benchmark::State& state) {
  const std::string text = makeText(false);
  std::string out;
  out.reserve(text.size());
  for (auto _ : state) {
    out.clear();
    TextChecker t(BareNewlines::kReject);
    t.feed(text, out);
    t.finish(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_TextChecker);

}  // namespace
