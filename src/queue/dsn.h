// Delivery status notifications: RFC 3464 multipart/report messages (RFC 6522), with a
// human-readable part, a message/delivery-status part (RFC 3464 §2.2 per-message fields:
// Original-Envelope-Id, Reporting-MTA, Arrival-Date; §2.3 per-recipient fields:
// Original-Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
// Last-Attempt-Date, Will-Retry-Until), and the original message: its header
// (text/rfc822-headers) or, for a failure the sender did not limit with RET=HDRS
// (RFC 3461 §4.3), the whole message (message/rfc822) up to kMaxReturnedMessageBytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postern::queue {

inline constexpr size_t kMaxReturnedHeaderBytes = 64 * 1024;
// A larger original is returned as its header only (the text says so).
inline constexpr size_t kMaxReturnedMessageBytes = 256 * 1024;

// RFC 3464 §2.3.3 Action. One notification reports one kind of event.
enum class DsnAction : uint8_t {
  kFailed,      // permanent failure, or the lifetime ran out
  kDelayed,     // still being retried (a delay warning)
  kDelivered,   // delivered to the recipient's mailbox (here, or by a DSN-aware server)
  kRelayed,     // handed to a server that does not send DSNs: no further notice
};
std::string_view dsnActionName(DsnAction a);   // "failed", "delayed", ...

struct DsnRecipient {
  std::string address;      // as the sender wrote it
  std::string status;       // enhanced status code, e.g. "5.1.1"
  std::string diagnostic;   // the reason (remote reply or local error); may be empty
  std::string diagnostic_type = "x-postern";   // "smtp" for a remote server's reply
  std::string original_recipient;   // ORCPT as given, "rfc822;user@example.org"; empty: none
  std::string remote_mta;           // the server that answered (Remote-MTA: dns; ...); empty: none
};

struct DsnInput {
  std::string reporting_mta;   // our hostname
  std::string boundary_seed;   // makes the MIME boundary unique (e.g. the queue id)
  std::string original_queue_id;
  std::string original_sender;
  std::string envid;           // RFC 3461 ENVID, decoded; empty: not given
  DsnAction action = DsnAction::kFailed;
  bool return_full = true;     // kFailed only: the whole original (RET=FULL or not given)
  uint64_t arrival_us = 0;
  uint64_t now_us = 0;
  uint64_t retry_until_us = 0;   // kDelayed: Will-Retry-Until (0: not said)
  std::vector<DsnRecipient> recipients;
  std::string_view original;   // the message the notification is about
};

// The whole notification message, CRLF line ends, ready for the spool.
std::string buildDsn(const DsnInput& in);
// The RFC 3463 status that fits a local failure reason.
std::string statusForLocalFailure(bool permanent, std::string_view reason, bool expired);

}  // namespace postern::queue
