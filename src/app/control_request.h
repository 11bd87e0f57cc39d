// The request line of the control socket (control.h): what `postern ban` sends. Pure.
//   ban list
//   ban add <address|prefix> <seconds> [reason...]
//   ban del <address|prefix>
// Words are separated by one or more blanks; the reason is the rest of the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern::app {

inline constexpr uint64_t kMaxManualBanSeconds = 10ull * 365 * 86400;

struct ControlRequest {
  enum class Kind : uint8_t { kBanList, kBanAdd, kBanDel } kind = Kind::kBanList;
  std::string target;          // add, del: the address or prefix as written
  uint64_t seconds = 0;        // add: 1..kMaxManualBanSeconds
  std::string reason = "manual";
};

// Errors are the reply's text after "error: ".
Result<ControlRequest> parseControlRequest(std::string_view line);
// The request line for `r` (what the command line sends); parses back to `r`.
std::string formatControlRequest(const ControlRequest& r);

}  // namespace postern::app
