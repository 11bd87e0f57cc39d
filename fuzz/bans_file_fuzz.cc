// libFuzzer target for parseBans (src/protect/bans_file.h), the file a server reads at start.
// Invariant: whatever parses formats back to text that parses to the same bans.
// Seeds: fuzz/corpus/bans_file/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protect/bans_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace postern::protect;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bans = parseBans(text);
  if (!bans) return 0;
  auto again = parseBans(formatBans(*bans));
  if (!again || again->size() != bans->size()) __builtin_trap();
  for (size_t i = 0; i < bans->size(); ++i) {
    const Ban &a = (*bans)[i], &b = (*again)[i];
    if (a.key != b.key || a.until != b.until || a.level != b.level || a.reason != b.reason) __builtin_trap();
    if (a.key.empty() || a.level > kMaxBanLevel || a.until < 0) __builtin_trap();
  }
  return 0;
}
