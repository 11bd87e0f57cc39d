// The signing keys of `[dkim] keys`, one selector per domain, and the decision to sign a
// message at acceptance. Folder layouts read as they are:
//
//   <keys>/<domain>/<selector>.key                    Postern (`postern dkim keygen`)
//   <keys>/<domain>/<selector>.private                opendkim's keys/ folder
//   <keys>/keys/<domain>/<selector>.private           docker-mailserver's config/opendkim/,
//   <keys>/KeyTable, <keys>/SigningTable                with its tables when present
//   <keys>/rsa-<bits>-<selector>-<domain>.private.txt docker-mailserver's config/rspamd/dkim/
//   <keys>/ed25519-<selector>-<domain>.private.txt
//
// A domain with several selectors signs with "mail" when it has one, else with the first
// in name order (a note names the others).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/signer.h"

namespace postern::dkim {

inline constexpr std::string_view kDefaultSelector = "mail";

class KeySet {
 public:
  // The key that signs mail whose From: domain is `domain` (lower case): the domain's own,
  // else that of the nearest parent domain (d= is then the parent, which DMARC's relaxed
  // alignment accepts). Null when there is none.
  const SigningKey* find(std::string_view domain) const;
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  void add(std::string signing_domain, SigningKey key) {
    keys_.insert_or_assign(std::move(signing_domain), std::move(key));
  }
  const std::map<std::string, SigningKey>& all() const { return keys_; }

 private:
  std::map<std::string, SigningKey> keys_;  // by signing domain
};

struct KeyProblem {
  std::string path;
  std::string reason;
};

struct ScanResult {
  KeySet keys;
  std::vector<KeyProblem> problems;  // keys that were found but could not be used
  std::vector<std::string> notes;    // things ignored on purpose (extra selectors, table lines)
};

// Reads every key under `dir` (layouts above). A missing folder is an empty result.
ScanResult scanKeyFolder(const std::string& dir);

// The keys in use, shared by all sessions; load() replaces them (start and SIGHUP).
class KeyStore {
 public:
  explicit KeyStore(std::string dir) : dir_(std::move(dir)) {}
  // Scans the folder and logs each key loaded and each one that failed (file and reason).
  // A domain whose key fails now keeps the key it had, if any.
  void load(std::string_view trigger);
  std::shared_ptr<const KeySet> current() const {
    std::lock_guard lock(mu_);
    return keys_;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> keys_ = std::make_shared<KeySet>();
};

struct SignOutcome {
  enum class Kind { kNoKey, kSigned, kFailed } kind = Kind::kNoKey;
  std::string field;     // the DKIM-Signature field with its CRLF (kSigned)
  std::string domain;    // d= (kSigned, kFailed)
  std::string selector;  // s=
  std::string reason;    // why not (kFailed)
};

// Signs `message` with the key of its From: domain. No From: domain with a key is kNoKey;
// a message from such a domain that cannot be signed (a header section that is not a list
// of fields; its From: is then read on its own) is kFailed with the reason.
SignOutcome signWithKeyFor(const KeySet& keys, std::string_view message, int64_t now);

// `postern dkim keygen`: writes <dir>/<domain>/<selector>.key (0600, folders 0700),
// never over an existing file, and returns the DNS record line to publish.
Result<std::string> writeNewKey(const std::string& dir, const std::string& domain, const std::string& selector,
                                KeyType type, unsigned bits);

// Domain and selector syntax accepted by keygen (DNS labels: letters, digits, '-', '_', '.').
bool validDnsName(std::string_view s);

}  // namespace postern::dkim
