// The lookup snapshot the SMTP server consults: accounts (postfix-accounts.cf) and
// aliases (postfix-virtual.cf, Postfix virtual(5)) joined into one immutable value.
// Resolution follows Postfix's order for virtual_alias_maps before virtual_mailbox_maps:
// an exact alias, then an account, then the catch-all "@domain" of a local domain.
// A reload builds a new snapshot and swaps the shared_ptr; readers keep the old one.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "directory/accounts.h"
#include "directory/aliases.h"
#include "util/file_source.h"
#include "util/status.h"
#include "util/strings.h"

namespace postern::directory {

// Alias chains longer than this are treated as loops (Postfix: virtual_alias_recursion_limit).
inline constexpr size_t kMaxAliasDepth = 10;
// More distinct targets than this from one address fail the resolution (Postfix:
// virtual_alias_expansion_limit).
inline constexpr size_t kMaxAliasExpansion = 1000;

class Directory {
 public:
  // Builds the snapshot. The files are expected to come from parseAccounts/parseAliases;
  // keys are lowercased again here, and if an address or alias appears twice anyway, the
  // first one wins.
  static std::shared_ptr<const Directory> build(AccountsFile accounts, AliasesFile aliases);

  // Domains of accounts and of aliases (catch-alls included), case-insensitive. Alias
  // targets do not make a domain local.
  bool isLocalDomain(std::string_view domain) const;
  // The account with this address (case-insensitive), or nullptr. Lives as long as *this.
  const Account* findAccount(std::string_view address) const;
  // Whether `address` (case-insensitive) is an alias key (exact, or a catch-all "@domain").
  bool hasAlias(std::string_view address) const { return findAlias(toLower(address)) != nullptr; }

  struct Target {
    std::string address;   // lowercased
    bool local_mailbox;    // an account here; else a remote address to forward to
  };
  enum class Outcome {
    kDeliver,       // targets is non-empty
    kUnknownUser,   // local domain, nothing deliverable
    kNotLocal,      // the domain is not ours (or the address has no '@')
    kLoop,          // alias cycle, or kMaxAliasDepth / kMaxAliasExpansion exceeded
  };
  struct Resolution {
    Outcome outcome;
    std::vector<Target> targets;   // only for kDeliver: de-duplicated, in expansion order
  };

  // RCPT resolution of `address` (case-insensitive). For each address, recursively: an
  // exact alias expands to its targets (an alias that lists itself delivers to its own
  // account if there is one, else that entry is dropped); else an account is a local
  // mailbox; else, in a local domain, the catch-all "@domain" expands; else a local
  // address is dropped and a non-local one is a remote target. Reaching an alias again
  // on the way down (a -> b -> a) is a loop: the whole resolution is kLoop.
  Resolution resolve(std::string_view address) const;

  // May the authenticated `user` use envelope sender `from`? Yes for its own address
  // (case-insensitive) and for an exact alias (never a catch-all) whose expansion reaches
  // `user` at any depth. No for an empty `from` (the null sender is the caller's call).
  bool mayUseSender(std::string_view user, std::string_view from) const;

  size_t accountCount() const { return accounts_.size(); }
  size_t aliasCount() const { return aliases_.size(); }
  // In file order, for listing.
  const std::vector<Account>& accounts() const { return accounts_; }
  const std::vector<Alias>& aliases() const { return aliases_; }

 private:
  struct Expansion;
  Directory() = default;
  const Alias* findAlias(const std::string& lowered) const;
  const Account* findAccountLowered(const std::string& lowered) const;
  bool expand(const std::string& address, size_t depth, Expansion& state) const;
  bool expandAlias(const Alias& alias, size_t depth, Expansion& state) const;

  std::vector<Account> accounts_;
  std::vector<Alias> aliases_;
  std::unordered_map<std::string, size_t> account_index_;   // address -> accounts_ index
  std::unordered_map<std::string, size_t> alias_index_;     // source -> aliases_ index
  std::unordered_set<std::string> domains_;
};

// The entries of `dir` that can never receive mail because an address that would be a
// mailbox folder fails checkMailboxAddress: accounts, and alias targets in a local domain
// that are not aliases themselves.
// One "FILE:LINE: error: ..." line each, in file order (accounts first). The files still
// load (a hand-edited line must not stop the server); `postern config check` reports these
// as errors, the server logs them, and RCPT refuses mail to them with 550 5.1.3.
std::vector<std::string> mailboxNameErrors(const Directory& dir, const std::string& accounts_path,
                                           const std::string& aliases_path);

// Reads and parses both files (file names label the messages) and builds a snapshot.
// A missing accounts file is an error; a missing aliases file means no aliases, with a
// note; an empty `aliases_path` means no aliases, silently (none configured). Notes from both files are appended to
// `notes` (if not null) as "FILE:LINE: note: ...". The files are read through `files`.
Result<std::shared_ptr<const Directory>> loadDirectory(const std::string& accounts_path,
                                                        const std::string& aliases_path,
                                                        std::vector<std::string>* notes,
                                                        FileSource& files = directFiles());

}  // namespace postern::directory
