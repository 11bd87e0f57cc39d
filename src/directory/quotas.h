// The quotas file: docker-mailserver's dovecot-quotas.cf (its `setup quota set` writes it;
// Dovecot reads the limits as quota_rule = *:storage=SIZE). One limit per line:
//
//   user@example.com:50M
//   big@example.com:2G
//   free@example.com:0          # 0: no limit for this account, whatever the default
//
// SIZE is a number of bytes, optionally followed (spaces allowed) by one of Dovecot's
// size units B, k, M, G, T (case-insensitive, powers of 1024, as in Dovecot's settings).
// Blank lines and lines whose first non-blank character is '#' are skipped; a trailing
// '\r' and a UTF-8 byte order mark are dropped. Addresses are case-insensitive and stored
// lowercased; an address listed twice is an error. Errors read "FILE:LINE: error: ...".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::directory {

// Largest quota accepted (1 EiB): keeps usage + size sums far from overflow.
inline constexpr uint64_t kMaxQuotaBytes = 1ull << 60;
// Longest line of the quotas file.
inline constexpr size_t kMaxQuotaLineLength = 1024;

struct QuotaEntry {
  std::string address;   // lowercased "local@domain"
  uint64_t bytes = 0;    // 0: unlimited
  size_t line = 0;       // 1-based
};

struct QuotasFile {
  std::vector<QuotaEntry> entries;   // in file order
};

// "50M", "1 G", "1048576", "0" into bytes (Dovecot's units, see above); nullopt for
// anything else or more than kMaxQuotaBytes. Pure.
std::optional<uint64_t> parseQuotaSize(std::string_view text);

// Parses the whole text of a quotas file. Pure: `filename` only labels messages.
Result<QuotasFile> parseQuotas(std::string_view text, std::string_view filename);

}  // namespace postern::directory
