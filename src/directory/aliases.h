// The aliases file: docker-mailserver's postfix-virtual.cf, i.e. a Postfix virtual(5)
// lookup table in its text form ("pattern result", Postfix DATABASE_README / postmap(1)):
//
//   alias@example.com    user@example.com
//   team@example.com     a@example.com, b@example.com  c@example.net
//   @example.com         catchall@example.com
//
// The first whitespace ends the alias; the rest is a list of full addresses separated by
// commas and/or whitespace. As in Postfix, a line that starts with whitespace continues
// the previous line (reported as a note, since it is easy to do by accident); blank lines
// and lines whose first non-blank character is '#' are skipped, also inside a continued
// line. A trailing '\r' and a UTF-8 byte order mark are dropped. Everything is stored
// lowercased. Not supported (errors): Postfix's bare `user` and `domain anything` keys,
// targets without a domain, inline comments. Errors are "FILE:LINE: error: ...".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "directory/accounts.h"
#include "util/status.h"

namespace postern::directory {

struct Alias {
  std::string source;                 // "alias@domain" or catch-all "@domain", lowercased
  std::vector<std::string> targets;   // full addresses, lowercased, in file order (never empty)
  size_t line = 0;                    // 1-based first line
  size_t end_line = 0;                // last line (> line when continued; 0 = same as line)
};

struct AliasesFile {
  std::vector<Alias> aliases;   // in file order
  std::vector<Note> notes;
};

// Parses the whole text of an aliases file. Pure: `filename` only labels messages.
// The first problem found is returned as Status::invalid("FILE:LINE: error: ..."):
// an alias without targets, a malformed alias or target, a duplicate alias.
Result<AliasesFile> parseAliases(std::string_view text, std::string_view filename);

// Checks an alias key: "local@domain" (checkAddress) or a catch-all "@domain".
Status checkAliasSource(std::string_view source);

// The targets of a `postern alias add` argument or of an aliases line after the key:
// split on commas and whitespace, empty pieces dropped. Case and syntax unchanged.
std::vector<std::string_view> splitTargets(std::string_view list);

}  // namespace postern::directory
