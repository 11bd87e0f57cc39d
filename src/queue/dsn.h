// Delivery status notifications (bounces): RFC 3464 multipart/report messages
// (RFC 6522), with a human-readable part, a message/delivery-status part naming each
// failed recipient (RFC 3464 §2.3: Final-Recipient, Action, Status, Diagnostic-Code), and
// the returned message's header (text/rfc822-headers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postern::queue {

inline constexpr size_t kMaxReturnedHeaderBytes = 64 * 1024;

struct FailedRecipient {
  std::string address;      // as the sender wrote it
  std::string status;       // enhanced status code, e.g. "5.1.1"
  std::string diagnostic;   // the reason (remote reply or local error)
};

struct DsnInput {
  std::string reporting_mta;   // our hostname
  std::string boundary_seed;   // makes the MIME boundary unique (e.g. the queue id)
  std::string original_queue_id;
  std::string original_sender;
  uint64_t arrival_us = 0;
  uint64_t now_us = 0;
  std::vector<FailedRecipient> failed;
  std::string_view original;   // the returned message (its header part is used)
};

// The whole notification message, CRLF line ends, ready for the spool.
std::string buildDsn(const DsnInput& in);
// The RFC 3463 status that fits a local failure reason.
std::string statusForLocalFailure(bool permanent, std::string_view reason, bool expired);

}  // namespace postern::queue
