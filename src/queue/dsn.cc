#include "queue/dsn.h"

#include <fmt/format.h>

#include "util/time_text.h"

namespace postern::queue {
namespace {

// The header part of a message: up to the first empty line, capped.
std::string_view headerPart(std::string_view msg) {
  size_t end = msg.find("\r\n\r\n");
  size_t cut = end == std::string_view::npos ? msg.size() : end + 2;
  return msg.substr(0, std::min(cut, kMaxReturnedHeaderBytes));
}

// Keeps a diagnostic on one line of printable text.
std::string oneLine(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
  return out;
}

std::string_view subjectFor(DsnAction a) {
  switch (a) {
    case DsnAction::kFailed: return "Undelivered Mail Returned to Sender";
    case DsnAction::kDelayed: return "Delayed Mail (still being retried)";
    case DsnAction::kDelivered: return "Successful Mail Delivery Report";
    case DsnAction::kRelayed: return "Relayed Mail Delivery Report";
  }
  return "Delivery Status Notification";
}

}  // namespace

std::string_view dsnActionName(DsnAction a) {
  switch (a) {
    case DsnAction::kFailed: return "failed";
    case DsnAction::kDelayed: return "delayed";
    case DsnAction::kDelivered: return "delivered";
    case DsnAction::kRelayed: return "relayed";
  }
  return "failed";
}

std::string statusForLocalFailure(bool permanent, std::string_view reason, bool expired) {
  if (expired) return "4.4.7";   // RFC 3463: delivery time expired
  if (reason.find("no longer exists") != std::string_view::npos) return "5.1.1";
  if (reason.find("unsafe mailbox") != std::string_view::npos) return "5.1.3";
  if (permanent && reason.starts_with("mailbox full")) return "5.2.2";   // RFC 3463: mailbox full
  return permanent ? "5.0.0" : "4.0.0";
}

std::string buildDsn(const DsnInput& in) {
  std::string boundary = fmt::format("=_postern_{}", in.boundary_seed);
  // RFC 3461 §4.3: RET decides what a failure returns; the other notifications return
  // the header only. A message too large to return whole is returned as its header.
  bool wants_full = in.action == DsnAction::kFailed && in.return_full;
  bool full = wants_full && in.original.size() <= kMaxReturnedMessageBytes;

  std::string out;
  out += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", in.reporting_mta);
  out += fmt::format("To: <{}>\r\n", in.original_sender);
  out += fmt::format("Subject: {}\r\n", subjectFor(in.action));
  out += fmt::format("Date: {}\r\n", rfc5322Date(in.now_us));
  out += fmt::format("Message-ID: <{}.dsn@{}>\r\n", in.boundary_seed, in.reporting_mta);
  out += "Auto-Submitted: auto-replied\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n", boundary);
  out += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  out += fmt::format("--{}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
  out += fmt::format("This is the mail system at {}.\r\n\r\n", in.reporting_mta);
  switch (in.action) {
    case DsnAction::kFailed:
      out += "Your message could not be delivered to one or more recipients.\r\n";
      break;
    case DsnAction::kDelayed:
      out += "Your message could not be delivered yet to one or more recipients.\r\n";
      if (in.retry_until_us != 0)
        out += fmt::format("Delivery will be tried again until {}.\r\n", rfc5322Date(in.retry_until_us));
      out += "This is only a warning: you do not need to send the message again.\r\n"
             "You will be told if it cannot be delivered in the end.\r\n";
      break;
    case DsnAction::kDelivered:
      out += "Your message was delivered to the recipients below, as you asked.\r\n";
      break;
    case DsnAction::kRelayed:
      out += "Your message was passed on to a mail system that does not report delivery:\r\n"
             "no further notice about it will come for the recipients below.\r\n";
      break;
  }
  if (full) out += "It is attached below.\r\n\r\n";
  else if (wants_full) out += "It is too large to return whole: its header is attached below.\r\n\r\n";
  else out += "It is attached below (its header only).\r\n\r\n";
  for (const auto& r : in.recipients) {
    if (r.diagnostic.empty()) out += fmt::format("<{}>: {}\r\n", r.address, dsnActionName(in.action));
    else out += fmt::format("<{}>: {}\r\n", r.address, oneLine(r.diagnostic));
  }
  out += "\r\n";

  // RFC 3464 §2.2 and §2.3, fields in the order of its grammar.
  out += fmt::format("--{}\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
  if (!in.envid.empty()) out += fmt::format("Original-Envelope-Id: {}\r\n", oneLine(in.envid));
  out += fmt::format("Reporting-MTA: dns; {}\r\n", in.reporting_mta);
  out += fmt::format("Arrival-Date: {}\r\n", rfc5322Date(in.arrival_us));
  out += fmt::format("X-Postern-Queue-ID: {}\r\n", in.original_queue_id);
  for (const auto& r : in.recipients) {
    out += "\r\n";
    if (!r.original_recipient.empty()) out += fmt::format("Original-Recipient: {}\r\n", oneLine(r.original_recipient));
    out += fmt::format("Final-Recipient: rfc822; {}\r\n", r.address);
    out += fmt::format("Action: {}\r\n", dsnActionName(in.action));
    out += fmt::format("Status: {}\r\n", r.status);
    if (!r.remote_mta.empty()) out += fmt::format("Remote-MTA: dns; {}\r\n", oneLine(r.remote_mta));
    if (!r.diagnostic.empty())
      out += fmt::format("Diagnostic-Code: {}; {}\r\n", r.diagnostic_type, oneLine(r.diagnostic));
    out += fmt::format("Last-Attempt-Date: {}\r\n", rfc5322Date(in.now_us));
    if (in.action == DsnAction::kDelayed && in.retry_until_us != 0)
      out += fmt::format("Will-Retry-Until: {}\r\n", rfc5322Date(in.retry_until_us));
  }
  out += "\r\n";

  if (full) {
    out += fmt::format("--{}\r\nContent-Type: message/rfc822\r\n\r\n", boundary);
    out.append(in.original);
    if (!in.original.ends_with("\r\n")) out += "\r\n";
  } else {
    out += fmt::format("--{}\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
    std::string_view h = headerPart(in.original);
    out.append(h);
    if (h.size() < 2 || h.substr(h.size() - 2) != "\r\n") out += "\r\n";
  }
  out += fmt::format("\r\n--{}--\r\n", boundary);
  return out;
}

}  // namespace postern::queue
