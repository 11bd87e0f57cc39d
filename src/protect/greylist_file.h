// The greylist state file, <data_dir>/state/greylist: one triplet per line,
//   <network> <first_seen> <last_seen> <wait|pass> <sender> <recipient>
// network: the client's network in CIDR form ("192.0.2.0/24", "2001:db8:1:2::/64");
// first_seen, last_seen: unix seconds; wait: deferred, not yet retried after the delay;
// pass: retried in time (last_seen is then the last time it was used). Sender and recipient
// are lowercased addresses with every byte outside '!'..'~' and the bytes '%', '<', '>'
// written as %XX; the null sender is written "<>". '#' starts a comment line.
// Pure: no I/O (protect/greylist.h reads and writes the file atomically).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::protect {

struct GreylistEntry {
  std::string network;      // CIDR text of the client's network
  std::string sender;       // lowercased; empty: the null sender
  std::string recipient;    // lowercased
  int64_t first_seen = 0;   // unix seconds
  int64_t last_seen = 0;
  bool passed = false;
};

std::string formatGreylistLine(const GreylistEntry& e);   // with the trailing newline
std::string formatGreylist(const std::vector<GreylistEntry>& entries);
// One line (no newline; blanks around fields allowed). Errors name what is wrong.
// REQUIRES: the line is neither empty nor a comment (callers skip those).
Result<GreylistEntry> parseGreylistLine(std::string_view line);

// The %XX form of the sender and recipient fields, and back (nullopt: a bad escape).
std::string encodeGreylistAddress(std::string_view address);
std::optional<std::string> decodeGreylistAddress(std::string_view field);

}  // namespace postern::protect
