// libFuzzer target for parseAccounts (docker-mailserver postfix-accounts.cf, see
// src/directory/accounts.h). On success the accounts are built into a Directory and looked
// up. Never calls verifyPassword (slow by design). Seeds: fuzz/corpus/accounts/.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "directory/accounts.h"
#include "directory/directory.h"

namespace {

using postern::directory::Directory;

// Invariants every Resolution keeps.
void checkResolution(const Directory& dir, const Directory::Resolution& r) {
  if ((r.outcome == Directory::Outcome::kDeliver) == r.targets.empty()) __builtin_trap();
  std::unordered_set<std::string> seen;
  for (const auto& t : r.targets) {
    if (!seen.insert(t.address).second) __builtin_trap();
    if (t.local_mailbox != (dir.findAccount(t.address) != nullptr)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = postern::directory::parseAccounts(text, "accounts.cf");
  if (!parsed) {
    if (parsed.status().message().rfind("accounts.cf:", 0) != 0) __builtin_trap();
    return 0;
  }
  for (const auto& account : parsed->accounts) {
    if (account.line == 0 || !postern::directory::checkAddress(account.address)) __builtin_trap();
    if (!postern::directory::checkHash(account.scheme, account.hash)) __builtin_trap();
  }
  auto dir = Directory::build(std::move(parsed).value(), {});
  for (const auto& account : dir->accounts()) {
    if (dir->findAccount(account.address) != &account) __builtin_trap();
    auto r = dir->resolve(account.address);
    if (r.outcome != Directory::Outcome::kDeliver || r.targets.size() != 1) __builtin_trap();
    checkResolution(*dir, r);
    if (!dir->mayUseSender(account.address, account.address)) __builtin_trap();
  }
  return 0;
}
