#include "protect/bans_file.h"

#include <fmt/format.h>

#include <cstdint>

#include "util/strings.h"

namespace postern::protect {

std::string formatBans(const std::vector<Ban>& bans) {
  std::string out = "# Postern bans: key until(unix seconds) level reason. Managed by `postern ban`.\n";
  for (const auto& b : bans) out += fmt::format("{} {} {} {}\n", b.key, b.until, b.level, b.reason);
  return out;
}

Result<std::vector<Ban>> parseBans(std::string_view text) {
  std::vector<Ban> out;
  size_t line_no = 0;
  for (std::string_view line : split(text, '\n')) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string_view rest = line;
    std::string_view key = takeWord(rest), until_text = takeWord(rest), level_text = takeWord(rest);
    if (level_text.empty()) return Status::invalid(fmt::format("bans:{}: expected 'key until level reason'", line_no));
    auto until = parseDecimal(until_text, INT64_MAX);
    auto level = parseDecimal(level_text, kMaxBanLevel);
    if (!until || !level) return Status::invalid(fmt::format("bans:{}: bad number", line_no));
    Ban b;
    b.key = std::string(key);
    b.until = static_cast<int64_t>(*until);
    b.level = static_cast<unsigned>(*level);
    b.reason = std::string(trim(rest));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace postern::protect
