// Structured event logging (DESIGN.md "Logs (contract)"): one line per event,
// `ts level event=NAME key=value ...` in text form or a JSON object with the same keys.
// Built on spdlog's asynchronous logger so an event-loop thread never blocks on stderr.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace postern::log {

enum class Format { kText, kJson };
enum class Level { kDebug, kInfo, kWarn, kError };

// Sets up the process-wide sink (stderr). Call once, before any thread logs.
void init(Format format, Level min_level);
void flush();
Format format();
bool enabled(Level level);

// An event under construction; written when it goes out of scope.
//   log::Event(log::Level::kInfo, "smtp.accepted").kv("conn", id).kv("size", n);
class Event {
 public:
  Event(Level level, std::string_view name);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  Event& kv(std::string_view key, std::string_view value);
  Event& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, uint64_t value);
  Event& kv(std::string_view key, int64_t value);
  Event& kv(std::string_view key, int value) { return kv(key, static_cast<int64_t>(value)); }
  Event& kv(std::string_view key, unsigned value) { return kv(key, static_cast<uint64_t>(value)); }
  Event& kv(std::string_view key, bool value) { return kv(key, std::string_view(value ? "true" : "false")); }
  // Only when the value is non-empty.
  Event& opt(std::string_view key, std::string_view value) {
    if (!value.empty()) kv(key, value);
    return *this;
  }

 private:
  void appendNumber(std::string_view key, std::string_view digits);
  Level level_;
  bool on_;
  std::string line_;
};

inline Event debug(std::string_view name) { return Event(Level::kDebug, name); }
inline Event info(std::string_view name) { return Event(Level::kInfo, name); }
inline Event warn(std::string_view name) { return Event(Level::kWarn, name); }
inline Event error(std::string_view name) { return Event(Level::kError, name); }

}  // namespace postern::log
