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

}  // namespace

std::string statusForLocalFailure(bool permanent, std::string_view reason, bool expired) {
  if (expired) return "4.4.7";   // RFC 3463: delivery time expired
  if (reason.find("no longer exists") != std::string_view::npos) return "5.1.1";
  if (reason.find("unsafe mailbox") != std::string_view::npos) return "5.1.3";
  if (permanent && reason.starts_with("mailbox full")) return "5.2.2";   // RFC 3463: mailbox full
  return permanent ? "5.0.0" : "4.0.0";
}

std::string buildDsn(const DsnInput& in) {
  std::string boundary = fmt::format("=_postern_{}", in.boundary_seed);
  std::string out;
  out += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", in.reporting_mta);
  out += fmt::format("To: <{}>\r\n", in.original_sender);
  out += "Subject: Undelivered Mail Returned to Sender\r\n";
  out += fmt::format("Date: {}\r\n", rfc5322Date(in.now_us));
  out += fmt::format("Message-ID: <{}.dsn@{}>\r\n", in.boundary_seed, in.reporting_mta);
  out += "Auto-Submitted: auto-replied\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n", boundary);
  out += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  out += fmt::format("--{}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
  out += fmt::format("This is the mail system at {}.\r\n\r\n", in.reporting_mta);
  out += "Your message could not be delivered to one or more recipients.\r\n";
  out += "It is attached below (its header only).\r\n\r\n";
  for (const auto& f : in.failed) out += fmt::format("<{}>: {}\r\n", f.address, oneLine(f.diagnostic));
  out += "\r\n";

  out += fmt::format("--{}\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
  out += fmt::format("Reporting-MTA: dns; {}\r\n", in.reporting_mta);
  out += fmt::format("X-Postern-Queue-ID: {}\r\n", in.original_queue_id);
  out += fmt::format("Arrival-Date: {}\r\n", rfc5322Date(in.arrival_us));
  for (const auto& f : in.failed) {
    out += "\r\n";
    out += fmt::format("Final-Recipient: rfc822; {}\r\n", f.address);
    out += "Action: failed\r\n";
    out += fmt::format("Status: {}\r\n", f.status);
    out += fmt::format("Diagnostic-Code: x-postern; {}\r\n", oneLine(f.diagnostic));
    out += fmt::format("Last-Attempt-Date: {}\r\n", rfc5322Date(in.now_us));
  }
  out += "\r\n";

  out += fmt::format("--{}\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
  std::string_view h = headerPart(in.original);
  out.append(h);
  if (h.size() < 2 || h.substr(h.size() - 2) != "\r\n") out += "\r\n";
  out += fmt::format("\r\n--{}--\r\n", boundary);
  return out;
}

}  // namespace postern::queue
