// The bans file, <data_dir>/state/bans: one ban per line, "<key> <until> <level> <reason...>"
// (key: an address or an IPv6 prefix; until: unix seconds; level: escalation, 0 for a
// first ban; reason: free text to the end of the line). '#' starts a comment line.
// Pure: no I/O (the protector reads and writes the file atomically).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::protect {

inline constexpr unsigned kMaxBanLevel = 1000;

struct Ban {
  std::string key;          // address or IPv6 prefix, e.g. "203.0.113.5" or "2001:db8:1:2::/64"
  int64_t until = 0;        // unix seconds
  unsigned level = 0;       // 0 for a first ban; each repeat doubles the time
  std::string reason;
};

std::string formatBans(const std::vector<Ban>& bans);
// Fields are separated by one or more blanks; errors name the line ("bans:3: ...").
Result<std::vector<Ban>> parseBans(std::string_view text);

}  // namespace postern::protect
