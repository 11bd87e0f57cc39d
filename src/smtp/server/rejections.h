// Every way the SMTP session refuses a command: the counter it increments (and logs as
// `counter=`) and the offence it counts towards an auto-ban, if any ([protect] in
// docs/protection.md). One table, so a new rejection states its offence where it is named.
#pragma once

#include <optional>
#include <string_view>

#include "protect/protector.h"

namespace postern::smtp {

struct Rejection {
  EventId counter;
  std::optional<protect::Offense> offense = std::nullopt;
};

namespace rejection {
inline constexpr Rejection kAliasLoop{"smtp.alias_loop"};
inline constexpr Rejection kAuthAuthzid{"smtp.auth_authzid"};
inline constexpr Rejection kAuthBadBase64{"smtp.auth_bad_base64", protect::Offense::kProtocolError};
inline constexpr Rejection kAuthCancelled{"smtp.auth_cancelled"};
inline constexpr Rejection kAuthFailed{"smtp.auth_failed", protect::Offense::kAuthFailure};
// 500 5.5.6 (RFC 4954 section 6): a response line longer than kMaxAuthLine; the exchange ends.
inline constexpr Rejection kAuthLineTooLong{"smtp.auth_line_too_long", protect::Offense::kProtocolError};
inline constexpr Rejection kAuthMalformed{"smtp.auth_malformed", protect::Offense::kProtocolError};
inline constexpr Rejection kAuthMechanism{"smtp.auth_mechanism"};
inline constexpr Rejection kAuthRequired{"smtp.auth_required"};
inline constexpr Rejection kAuthWithoutTls{"smtp.auth_without_tls", protect::Offense::kProtocolError};
// 550 5.1.3: the recipient's own local part cannot name a mailbox folder (a/b, "..", ...;
// directory/mailbox_name.h) and no safe mailbox takes its mail. Counted like an unknown
// recipient: nobody has such a mailbox.
// 501 5.5.2: the EHLO/HELO argument is neither a host name nor an address literal
// (smtp/proto/helo.h); it could forge the Received header.
inline constexpr Rejection kBadHelo{"smtp.bad_helo", protect::Offense::kProtocolError};
inline constexpr Rejection kBadMailboxName{"smtp.bad_mailbox_name", protect::Offense::kUnknownRecipient};
// 550 5.1.3: an alias of the recipient leads to an account whose address cannot name a
// mailbox folder. The accounts file is at fault, not the client: no offence.
inline constexpr Rejection kBadMailboxTarget{"smtp.bad_mailbox_target"};
inline constexpr Rejection kBadSequence{"smtp.bad_sequence", protect::Offense::kProtocolError};
inline constexpr Rejection kBareNewlineCommand{"smtp.bare_newline_command", protect::Offense::kProtocolError};
inline constexpr Rejection kBareNewlineData{"smtp.bare_newline_data", protect::Offense::kProtocolError};
inline constexpr Rejection kBdatAfterError{"smtp.bdat_after_error"};
inline constexpr Rejection kDmarc{"smtp.dmarc_rejected"};   // 550 5.7.1: DMARC p=reject, with dmarc_enforce
inline constexpr Rejection kDnsbl{"smtp.dnsbl"};
inline constexpr Rejection kExpn{"smtp.expn"};
// RCPT refused for the SPF result of MAIL FROM ([verify] spf_reject; RFC 7372 §3.2 codes).
inline constexpr Rejection kSpf{"smtp.spf_rejected"};
inline constexpr Rejection kLineTooLong{"smtp.line_too_long", protect::Offense::kProtocolError};
inline constexpr Rejection kNoValidRecipients{"smtp.no_valid_recipients"};
inline constexpr Rejection kNulInCommand{"smtp.nul_in_command", protect::Offense::kProtocolError};
inline constexpr Rejection kNulInData{"smtp.nul_in_data"};
// 452 4.2.2: a local mailbox of the recipient is at its quota, or the SIZE declared at
// MAIL would take it past (delivery/quota_usage.h). Temporary: space may be freed.
inline constexpr Rejection kOverQuota{"smtp.over_quota"};
// 552 5.2.2 at the end of DATA: the message would take every recipient's mailbox past its
// quota. Permanent for this message (RFC 3463 5.2.2); counted with the RCPT refusals.
inline constexpr Rejection kOverQuotaData{"smtp.over_quota"};
inline constexpr Rejection kRelayDenied{"smtp.relay_denied", protect::Offense::kRelayAttempt};
inline constexpr Rejection kSenderDenied{"smtp.sender_denied"};
inline constexpr Rejection kSizeExceeded{"smtp.size_exceeded"};
// 550 5.1.1: RCPT to an SRS address of ours ([srs], delivery/srs.h) that cannot be
// reversed: a hash that does not match or a malformed address (forged: counted like an
// unknown recipient), or one older than max_age (a late bounce: no offence).
inline constexpr Rejection kSrsBadHash{"smtp.srs_bad_hash", protect::Offense::kUnknownRecipient};
inline constexpr Rejection kSrsExpired{"smtp.srs_expired"};
inline constexpr Rejection kSrsMalformed{"smtp.srs_malformed", protect::Offense::kUnknownRecipient};
inline constexpr Rejection kStarttlsUnavailable{"smtp.starttls_unavailable"};
inline constexpr Rejection kSyntaxError{"smtp.syntax_error", protect::Offense::kProtocolError};
inline constexpr Rejection kUnknownCommand{"smtp.unknown_command", protect::Offense::kProtocolError};
inline constexpr Rejection kUnknownRecipient{"smtp.unknown_recipient", protect::Offense::kUnknownRecipient};
inline constexpr Rejection kUtf8WithoutSmtputf8{"smtp.utf8_without_smtputf8"};
}  // namespace rejection

}  // namespace postern::smtp
