// The request line of the control socket (control.h): what `postern ban` and
// `postern queue` send. Pure.
//   ban list
//   ban add <address|prefix> <seconds> [reason...]
//   ban del <address|prefix>
//   queue list
//   queue show|retry|delete|bounce <queue id>
//   queue retry-all
// Words are separated by one or more blanks; the reason is the rest of the line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern::app {

inline constexpr uint64_t kMaxManualBanSeconds = 10ull * 365 * 86400;
inline constexpr size_t kMaxQueueIdLength = 40;

struct ControlRequest {
  enum class Kind : uint8_t {
    kBanList, kBanAdd, kBanDel,
    kQueueList, kQueueShow, kQueueRetry, kQueueRetryAll, kQueueDelete, kQueueBounce,
  } kind = Kind::kBanList;
  std::string target;          // ban add, del: the address or prefix as written; queue: the id
  uint64_t seconds = 0;        // add: 1..kMaxManualBanSeconds
  std::string reason = "manual";
};

// Errors are the reply's text after "error: ".
Result<ControlRequest> parseControlRequest(std::string_view line);
// The request line for `r` (what the command line sends); parses back to `r`.
std::string formatControlRequest(const ControlRequest& r);

}  // namespace postern::app
