// The immutable accounts + aliases snapshot and RCPT resolution (see directory.h).
#include "directory/directory.h"

#include <algorithm>

#include "directory/file_edit.h"
#include "directory/mailbox_name.h"
#include "util/strings.h"

namespace postern::directory {
namespace {

// The part after the last '@', or empty if there is none.
std::string_view domainOf(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

void appendNotes(const std::vector<Note>& from, const std::string& filename, std::vector<std::string>* notes) {
  if (notes == nullptr) return;
  for (const Note& note : from)
    notes->push_back(filename + ":" + std::to_string(note.line) + ": note: " + note.message);
}

}  // namespace

// State of one resolution: what was found, and the way down (for loop detection).
struct Directory::Expansion {
  std::vector<Target> targets;
  std::unordered_set<std::string> delivered;   // addresses already in targets
  std::vector<std::string> path;               // alias keys being expanded, outermost first
  std::unordered_set<std::string> done;        // alias keys fully expanded (diamonds: once)
  std::unordered_set<std::string> reached;     // every alias target met, at any depth

  bool add(const std::string& address, bool local_mailbox) {
    if (delivered.insert(address).second) targets.push_back(Target{address, local_mailbox});
    return targets.size() <= kMaxAliasExpansion;
  }
};

std::shared_ptr<const Directory> Directory::build(AccountsFile accounts, AliasesFile aliases) {
  std::shared_ptr<Directory> dir(new Directory());
  dir->accounts_.reserve(accounts.accounts.size());
  for (Account& account : accounts.accounts) {
    account.address = toLower(account.address);
    if (!dir->account_index_.emplace(account.address, dir->accounts_.size()).second) continue;
    dir->domains_.insert(std::string(domainOf(account.address)));
    dir->accounts_.push_back(std::move(account));
  }
  dir->aliases_.reserve(aliases.aliases.size());
  for (Alias& alias : aliases.aliases) {
    alias.source = toLower(alias.source);
    for (std::string& target : alias.targets) target = toLower(target);
    if (!dir->alias_index_.emplace(alias.source, dir->aliases_.size()).second) continue;
    dir->domains_.insert(std::string(domainOf(alias.source)));
    dir->aliases_.push_back(std::move(alias));
  }
  return dir;
}

bool Directory::isLocalDomain(std::string_view domain) const {
  return !domain.empty() && domains_.count(toLower(domain)) != 0;
}

const Account* Directory::findAccount(std::string_view address) const {
  return findAccountLowered(toLower(address));
}

const Account* Directory::findAccountLowered(const std::string& lowered) const {
  auto it = account_index_.find(lowered);
  return it == account_index_.end() ? nullptr : &accounts_[it->second];
}

const Alias* Directory::findAlias(const std::string& lowered) const {
  auto it = alias_index_.find(lowered);
  return it == alias_index_.end() ? nullptr : &aliases_[it->second];
}

// One address: exact alias, else account, else (local domain) catch-all, else remote.
bool Directory::expand(const std::string& address, size_t depth, Expansion& state) const {
  if (const Alias* alias = findAlias(address)) return expandAlias(*alias, depth, state);
  if (findAccountLowered(address) != nullptr) return state.add(address, true);
  std::string_view domain = domainOf(address);
  if (domain.empty()) return true;   // not an address: nothing to deliver to
  if (domains_.count(std::string(domain)) == 0) return state.add(address, false);
  if (const Alias* catch_all = findAlias("@" + std::string(domain))) return expandAlias(*catch_all, depth, state);
  return true;   // local, but neither alias nor account: dropped
}

bool Directory::expandAlias(const Alias& alias, size_t depth, Expansion& state) const {
  if (depth >= kMaxAliasDepth) return false;
  if (std::find(state.path.begin(), state.path.end(), alias.source) != state.path.end()) return false;
  if (state.done.count(alias.source) != 0) return true;
  state.path.push_back(alias.source);
  for (const std::string& target : alias.targets) {
    state.reached.insert(target);
    if (target == alias.source) {   // "a@x a@x, b@y": keep a copy in a@x's own mailbox
      if (findAccountLowered(target) != nullptr && !state.add(target, true)) return false;
      continue;
    }
    if (!expand(target, depth + 1, state)) return false;
  }
  state.path.pop_back();
  state.done.insert(alias.source);
  return true;
}

Directory::Resolution Directory::resolve(std::string_view address) const {
  std::string lowered = toLower(address);
  size_t at = lowered.rfind('@');
  if (at == std::string::npos) return {Outcome::kNotLocal, {}};
  if (!isLocalDomain(std::string_view(lowered).substr(at + 1))) return {Outcome::kNotLocal, {}};
  if (at == 0) return {Outcome::kUnknownUser, {}};   // "@domain" is a catch-all key, not a recipient
  Expansion state;
  if (!expand(lowered, 0, state)) return {Outcome::kLoop, {}};
  if (state.targets.empty()) return {Outcome::kUnknownUser, {}};
  return {Outcome::kDeliver, std::move(state.targets)};
}

bool Directory::mayUseSender(std::string_view user, std::string_view from) const {
  if (from.empty() || user.empty()) return false;
  if (iequals(user, from)) return true;
  std::string lowered = toLower(from);
  if (lowered.front() == '@') return false;   // a catch-all key is not a sender
  const Alias* alias = findAlias(lowered);
  if (alias == nullptr) return false;
  Expansion state;
  if (!expandAlias(*alias, 0, state)) return false;
  return state.reached.count(toLower(user)) != 0;
}

std::vector<std::string> mailboxNameErrors(const Directory& dir, const std::string& accounts_path,
                                           const std::string& aliases_path) {
  std::vector<std::string> out;
  for (const Account& account : dir.accounts()) {
    if (Status st = checkMailboxAddress(account.address); !st)
      out.push_back(accounts_path + ":" + std::to_string(account.line) + ": error: account '" +
                    quoteForMessage(account.address) + "' cannot have a mailbox: " + st.message() +
                    " (mail to it is refused with 550 5.1.3)");
  }
  for (const Alias& alias : dir.aliases()) {
    for (const std::string& target : alias.targets) {
      if (!dir.isLocalDomain(domainOf(target)) || dir.hasAlias(target)) continue;
      if (Status st = checkMailboxAddress(target); !st)
        out.push_back(aliases_path + ":" + std::to_string(alias.line) + ": error: alias '" +
                      quoteForMessage(alias.source) + "': target '" + quoteForMessage(target) +
                      "' is in a local domain but cannot be a mailbox: " + st.message());
    }
  }
  return out;
}

Result<std::shared_ptr<const Directory>> loadDirectory(const std::string& accounts_path,
                                                        const std::string& aliases_path,
                                                        std::vector<std::string>* notes,
                                                        FileSource& files) {
  Result<std::string> accounts_text = files.read(accounts_path);
  if (!accounts_text) return accounts_text.status();
  Result<AccountsFile> accounts = parseAccounts(*accounts_text, accounts_path);
  if (!accounts) return accounts.status();
  appendNotes(accounts->notes, accounts_path, notes);

  AliasesFile aliases;
  if (!aliases_path.empty()) {
    Result<std::string> aliases_text = files.read(aliases_path);
    if (aliases_text) {
      Result<AliasesFile> parsed = parseAliases(*aliases_text, aliases_path);
      if (!parsed) return parsed.status();
      aliases = std::move(parsed).value();
      appendNotes(aliases.notes, aliases_path, notes);
    } else if (aliases_text.status().code() == Status::Code::kNotFound) {
      if (notes != nullptr) notes->push_back(aliases_path + ": note: the aliases file does not exist: no aliases");
    } else {
      return aliases_text.status();
    }
  }
  return Directory::build(std::move(accounts).value(), std::move(aliases));
}

}  // namespace postern::directory
