#include "app/control_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "util/strings.h"

namespace postern::app {

namespace {

bool isQueueId(std::string_view id) {
  if (id.empty() || id.size() > kMaxQueueIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  });
}

Result<ControlRequest> parseQueueRequest(std::string_view verb, std::string_view rest) {
  using Kind = ControlRequest::Kind;
  ControlRequest r;
  if (verb == "list" || verb == "retry-all") {
    if (!trim(rest).empty()) return Status::invalid(fmt::format("'queue {}' takes no arguments", verb));
    r.kind = verb == "list" ? Kind::kQueueList : Kind::kQueueRetryAll;
    return r;
  }
  if (verb == "show") r.kind = Kind::kQueueShow;
  else if (verb == "retry") r.kind = Kind::kQueueRetry;
  else if (verb == "delete") r.kind = Kind::kQueueDelete;
  else if (verb == "bounce") r.kind = Kind::kQueueBounce;
  else return Status::invalid("unknown request");
  std::string_view id = takeWord(rest);
  if (id.empty() || !trim(rest).empty()) return Status::invalid(fmt::format("usage: queue {} <queue id>", verb));
  if (!isQueueId(id)) return Status::invalid(fmt::format("not a queue id: {}", id));
  r.target = std::string(id);
  for (char& c : r.target) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace

Result<ControlRequest> parseControlRequest(std::string_view line) {
  std::string_view rest = trim(line);
  std::string_view noun = takeWord(rest), verb = takeWord(rest);
  if (noun == "queue") return parseQueueRequest(verb, rest);
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
    case ControlRequest::Kind::kQueueList: return "queue list";
    case ControlRequest::Kind::kQueueRetryAll: return "queue retry-all";
    case ControlRequest::Kind::kQueueShow: return fmt::format("queue show {}", r.target);
    case ControlRequest::Kind::kQueueRetry: return fmt::format("queue retry {}", r.target);
    case ControlRequest::Kind::kQueueDelete: return fmt::format("queue delete {}", r.target);
    case ControlRequest::Kind::kQueueBounce: return fmt::format("queue bounce {}", r.target);
  }
  return {};
}

}  // namespace postern::app
