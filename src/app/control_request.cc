#include "app/control_request.h"

#include <fmt/format.h>

#include "util/strings.h"

namespace postern::app {

Result<ControlRequest> parseControlRequest(std::string_view line) {
  std::string_view rest = trim(line);
  std::string_view noun = takeWord(rest), verb = takeWord(rest);
  if (noun != "ban") return Status::invalid("unknown request");
  ControlRequest r;
  if (verb == "list") {
    if (!trim(rest).empty()) return Status::invalid("'ban list' takes no arguments");
    r.kind = ControlRequest::Kind::kBanList;
    return r;
  }
  if (verb == "del") {
    r.kind = ControlRequest::Kind::kBanDel;
    r.target = std::string(takeWord(rest));
    if (r.target.empty() || !trim(rest).empty()) return Status::invalid("usage: ban del <address>");
    return r;
  }
  if (verb == "add") {
    r.kind = ControlRequest::Kind::kBanAdd;
    r.target = std::string(takeWord(rest));
    std::string_view secs = takeWord(rest);
    if (r.target.empty() || secs.empty()) return Status::invalid("usage: ban add <address> <seconds> [reason]");
    auto n = parseDecimal(secs, kMaxManualBanSeconds);
    if (!n || *n == 0) return Status::invalid("bad duration");
    r.seconds = *n;
    if (std::string_view reason = trim(rest); !reason.empty()) r.reason = std::string(reason);
    return r;
  }
  return Status::invalid("unknown request");
}

std::string formatControlRequest(const ControlRequest& r) {
  switch (r.kind) {
    case ControlRequest::Kind::kBanList: return "ban list";
    case ControlRequest::Kind::kBanDel: return fmt::format("ban del {}", r.target);
    case ControlRequest::Kind::kBanAdd: return fmt::format("ban add {} {} {}", r.target, r.seconds, r.reason);
  }
  return {};
}

}  // namespace postern::app
