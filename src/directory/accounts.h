// The accounts file: docker-mailserver's postfix-accounts.cf (its `setup email add`
// writes it; Dovecot reads it as a passwd-file). One account per line:
//
//   user@example.com|{SHA512-CRYPT}$6$salt$hash
//   user@example.com|{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$salt$hash|anything else
//
// Schemes: see password.h. Fields after the hash are ignored with a note. Blank lines and
// lines whose first non-blank character is '#' are skipped; a trailing '\r' (Windows
// editors) and a UTF-8 byte order mark are dropped. Addresses are case-insensitive and
// stored lowercased. Errors are reported as "FILE:LINE: error: ..." (lines from 1).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "directory/password.h"
#include "util/status.h"

namespace postern::directory {

// RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
inline constexpr size_t kMaxAddressLength = 254;
// Longest piece of file content quoted back in a message.
inline constexpr size_t kMaxQuotedLength = 64;

struct Account {
  std::string address;   // lowercased "local@domain"
  Scheme scheme = kDefaultScheme;
  std::string hash;      // without the {SCHEME} prefix
  size_t line = 0;       // 1-based line in the file it came from
};

// A non-fatal finding (ignored field, byte order mark, continuation line...).
struct Note {
  size_t line;           // 1-based
  std::string message;   // without "FILE:LINE: note: "
};

struct AccountsFile {
  std::vector<Account> accounts;   // in file order
  std::vector<Note> notes;
};

// Parses the whole text of an accounts file. Pure: `filename` only labels messages.
// The first problem found is returned as Status::invalid("FILE:LINE: error: ...").
Result<AccountsFile> parseAccounts(std::string_view text, std::string_view filename);

// Address syntax shared by both files and the editing commands: "local@domain", one '@',
// non-empty parts, at most kMaxAddressLength bytes, no spaces, control characters, '|'
// or ','; the local part has no ()<>[]:;\" characters; the domain is dot-separated
// non-empty labels of letters, digits, '-', '_' or UTF-8 bytes (no address literals).
// Case is not changed. The message (no file/line) says what is wrong.
Status checkAddress(std::string_view address);
// The domain rules of checkAddress alone.
Status checkDomain(std::string_view domain);

// `text` made safe to quote in a message or log line: control bytes as \xNN, cut to
// kMaxQuotedLength bytes with "..." appended when longer.
std::string quoteForMessage(std::string_view text);

}  // namespace postern::directory
