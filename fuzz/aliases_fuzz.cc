// libFuzzer target for parseAliases (docker-mailserver postfix-virtual.cf, Postfix
// virtual(5), see src/directory/aliases.h). Input: an aliases file, or an accounts file,
// a NUL byte and an aliases file. On success a Directory is built (accounts from the
// accounts part, else every other alias target) and every alias and target is resolved.
// Seeds: fuzz/corpus/aliases/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "directory/accounts.h"
#include "directory/aliases.h"
#include "directory/directory.h"

namespace {

using postern::directory::Directory;

void checkResolution(const Directory& dir, const Directory::Resolution& r) {
  if ((r.outcome == Directory::Outcome::kDeliver) == r.targets.empty()) __builtin_trap();
  if (r.targets.size() > postern::directory::kMaxAliasExpansion) __builtin_trap();
  std::unordered_set<std::string> seen;
  for (const auto& t : r.targets) {
    if (!seen.insert(t.address).second) __builtin_trap();
    if (t.local_mailbox != (dir.findAccount(t.address) != nullptr)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view accounts_text;
  size_t nul = input.find('\0');
  if (nul != std::string_view::npos) {
    accounts_text = input.substr(0, nul);
    input.remove_prefix(nul + 1);
  }
  auto aliases = postern::directory::parseAliases(input, "virtual.cf");
  if (!aliases) {
    if (aliases.status().message().rfind("virtual.cf:", 0) != 0) __builtin_trap();
    return 0;
  }
  for (const auto& alias : aliases->aliases) {
    if (alias.targets.empty() || alias.line == 0 || alias.end_line < alias.line) __builtin_trap();
    if (!postern::directory::checkAliasSource(alias.source)) __builtin_trap();
  }

  postern::directory::AccountsFile accounts;
  auto parsed_accounts = postern::directory::parseAccounts(accounts_text, "accounts.cf");
  if (nul != std::string_view::npos && parsed_accounts) {
    accounts = std::move(parsed_accounts).value();
  } else {
    bool take = false;
    for (const auto& alias : aliases->aliases) {
      for (const auto& target : alias.targets) {
        if ((take = !take)) accounts.accounts.push_back({target, postern::directory::Scheme::kSha512Crypt, "", 0});
      }
    }
  }
  postern::directory::AliasesFile copy = *aliases;
  auto dir = Directory::build(std::move(accounts), std::move(copy));
  for (const auto& alias : aliases->aliases) {
    std::string address = alias.source.front() == '@' ? "someone" + alias.source : alias.source;
    if (!dir->isLocalDomain(address.substr(address.rfind('@') + 1))) __builtin_trap();
    auto r = dir->resolve(address);
    if (r.outcome == Directory::Outcome::kNotLocal) __builtin_trap();
    checkResolution(*dir, r);
    for (const auto& target : alias.targets) {
      checkResolution(*dir, dir->resolve(target));
      dir->mayUseSender(target, alias.source);
    }
  }
  return 0;
}
