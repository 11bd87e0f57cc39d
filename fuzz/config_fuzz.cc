// Fuzz target: the configuration loader (TOML via toml++, then validation) on arbitrary
// text. It must never crash, and a loaded config must satisfy its invariants.
#include <cassert>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  postern::config::LoadResult r = postern::config::loadFromString(text, "/nonexistent/fuzz.toml");
  if (r.config) {
    assert(!r.hasErrors());
    assert(!r.config->hostname.empty());
    assert(!r.config->listeners.empty());
    for (const auto& l : r.config->listeners) assert(l.service != nullptr);
    (void)postern::config::describe(*r.config);
  } else {
    assert(r.hasErrors());
  }
  for (const auto& d : r.diagnostics) (void)d.toString();
  return 0;
}
