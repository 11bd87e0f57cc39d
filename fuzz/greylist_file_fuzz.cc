// libFuzzer target for parseGreylistLine (src/protect/greylist_file.h), run over each line
// of the state file a server reads at start.
// Invariant: whatever parses formats back to a line that parses to the same entry.
// Seeds: fuzz/corpus/greylist_file/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protect/greylist_file.h"
#include "util/strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace postern;
  using namespace postern::protect;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::string_view line : split(text, '\n')) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto e = parseGreylistLine(line);
    if (!e) continue;
    std::string again_text = formatGreylistLine(*e);
    if (again_text.empty() || again_text.back() != '\n') __builtin_trap();
    auto again = parseGreylistLine(std::string_view(again_text).substr(0, again_text.size() - 1));
    if (!again) __builtin_trap();
    if (again->network != e->network || again->sender != e->sender || again->recipient != e->recipient ||
        again->first_seen != e->first_seen || again->last_seen != e->last_seen || again->passed != e->passed)
      __builtin_trap();
    if (e->recipient.empty() || e->last_seen < e->first_seen) __builtin_trap();
  }
  return 0;
}
