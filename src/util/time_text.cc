#include "util/time_text.h"

#include <chrono>
#include <ctime>

namespace postern {
namespace {
std::string format(uint64_t unix_us, const char* pattern) {
  std::time_t t = static_cast<std::time_t>(unix_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, pattern, &tm);
  return std::string(buf, n);
}
}  // namespace

std::string rfc5322Date(uint64_t unix_us) { return format(unix_us, "%a, %d %b %Y %H:%M:%S +0000"); }
std::string isoUtc(uint64_t unix_us) { return format(unix_us, "%Y-%m-%dT%H:%M:%SZ"); }

uint64_t nowUnixUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace postern
