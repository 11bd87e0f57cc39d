// libFuzzer target for parseQuotas (docker-mailserver dovecot-quotas.cf, see
// src/directory/quotas.h) and parseQuotaSize. Seeds: fuzz/corpus/quotas/.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "directory/accounts.h"
#include "directory/quotas.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto q = postern::directory::parseQuotaSize(text); q && *q > postern::directory::kMaxQuotaBytes) __builtin_trap();
  auto parsed = postern::directory::parseQuotas(text, "quotas.cf");
  if (!parsed) {
    if (parsed.status().message().rfind("quotas.cf:", 0) != 0) __builtin_trap();
    return 0;
  }
  std::unordered_set<std::string> seen;
  size_t last_line = 0;
  for (const auto& e : parsed->entries) {
    if (e.line <= last_line || !postern::directory::checkAddress(e.address)) __builtin_trap();
    if (e.bytes > postern::directory::kMaxQuotaBytes || !seen.insert(e.address).second) __builtin_trap();
    last_line = e.line;
  }
  return 0;
}
