#include "log/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

#include "log/escape.h"
#include "util/thread_name.h"

namespace postern::log {
namespace {

std::atomic<Format> g_format{Format::kText};
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::shared_ptr<spdlog::logger> g_logger;  // set once in init(); spdlog's own registry is global too

spdlog::level::level_enum toSpd(Level l) {
  switch (l) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

bool needsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
  return false;
}

std::shared_ptr<spdlog::logger> logger() {
  if (!g_logger) {
    // Logging before init() (unit tests, early errors): a synchronous stderr logger.
    g_logger = std::make_shared<spdlog::logger>("postern", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    g_logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  return g_logger;
}

}  // namespace

void init(Format format, Level min_level) {
  g_format = format;
  g_min_level = static_cast<int>(min_level);
  spdlog::init_thread_pool(16384, 1, [] { util::setThreadName("postern-log"); });
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  g_logger = std::make_shared<spdlog::async_logger>("postern", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::block);
  if (format == Format::kJson) {
    g_logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})", spdlog::pattern_time_type::utc);
  } else {
    g_logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  g_logger->set_level(toSpd(min_level));
  g_logger->flush_on(spdlog::level::debug);
}

void flush() {
  if (g_logger) g_logger->flush();
}

Format format() { return g_format.load(std::memory_order_relaxed); }

bool enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

Event::Event(Level level, std::string_view name) : level_(level), on_(enabled(level)) {
  if (on_) kv("event", name);
}

Event::~Event() {
  if (!on_) return;
  logger()->log(toSpd(level_), std::string_view(line_));
}

Event& Event::kv(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  if (format() == Format::kJson) {
    if (!line_.empty()) line_ += ',';
    line_ += '"';
    line_ += key;
    line_ += "\":\"";
    appendJsonEscaped(line_, value);
    line_ += '"';
  } else {
    if (!line_.empty()) line_ += ' ';
    line_ += key;
    line_ += '=';
    if (needsQuoting(value)) {
      line_ += '"';
      appendTextEscaped(line_, value);
      line_ += '"';
    } else {
      line_ += value;
    }
  }
  return *this;
}

// Numbers are written bare in both formats (no quotes in JSON).
void Event::appendNumber(std::string_view key, std::string_view digits) {
  if (!line_.empty()) line_ += format() == Format::kJson ? ',' : ' ';
  if (format() == Format::kJson) line_ += fmt::format("\"{}\":{}", key, digits);
  else line_ += fmt::format("{}={}", key, digits);
}

Event& Event::kv(std::string_view key, uint64_t value) {
  if (on_) appendNumber(key, fmt::format("{}", value));
  return *this;
}

Event& Event::kv(std::string_view key, int64_t value) {
  if (on_) appendNumber(key, fmt::format("{}", value));
  return *this;
}

}  // namespace postern::log
