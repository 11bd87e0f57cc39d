#include "protect/greylist_file.h"

#include <fmt/format.h>

#include "util/ip.h"
#include "util/strings.h"

namespace postern::protect {

namespace {
constexpr std::string_view kNullSender = "<>";
constexpr uint64_t kMaxSeconds = uint64_t(1) << 40;   // far beyond any real clock, below overflow

bool mustEscape(unsigned char c) { return c <= ' ' || c > '~' || c == '%' || c == '<' || c == '>'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

std::string encodeGreylistAddress(std::string_view address) {
  if (address.empty()) return std::string(kNullSender);
  std::string out;
  out.reserve(address.size());
  for (char c : address) {
    if (mustEscape(static_cast<unsigned char>(c))) out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else out += c;
  }
  return out;
}

std::optional<std::string> decodeGreylistAddress(std::string_view field) {
  if (field == kNullSender) return std::string();
  if (field.empty()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(field[i]);
    if (c == '%') {
      if (i + 2 >= field.size()) return std::nullopt;
      int hi = hexValue(field[i + 1]), lo = hexValue(field[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      unsigned char b = static_cast<unsigned char>(hi * 16 + lo);
      if (!mustEscape(b)) return std::nullopt;   // one spelling per address: the formatter's
      out += static_cast<char>(b);
      i += 2;
    } else if (mustEscape(c)) {
      return std::nullopt;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string formatGreylistLine(const GreylistEntry& e) {
  return fmt::format("{} {} {} {} {} {}\n", e.network, e.first_seen, e.last_seen, e.passed ? "pass" : "wait",
                     encodeGreylistAddress(e.sender), encodeGreylistAddress(e.recipient));
}

std::string formatGreylist(const std::vector<GreylistEntry>& entries) {
  std::string out = "# Postern greylist: network first_seen last_seen wait|pass sender recipient (unix seconds)\n";
  for (const auto& e : entries) out += formatGreylistLine(e);
  return out;
}

Result<GreylistEntry> parseGreylistLine(std::string_view line) {
  std::string_view rest = line;
  std::string_view network = takeWord(rest), first = takeWord(rest), last = takeWord(rest), state = takeWord(rest),
                   sender = takeWord(rest), recipient = takeWord(rest);
  if (recipient.empty()) return Status::invalid("expected 'network first_seen last_seen wait|pass sender recipient'");
  if (!trim(rest).empty()) return Status::invalid("extra text after the recipient");
  auto cidr = Cidr::parse(network);
  if (!cidr || network.find('/') == std::string_view::npos || cidr->toString() != network)
    return Status::invalid(fmt::format("bad network '{}'", network));
  auto f = parseDecimal(first, kMaxSeconds), l = parseDecimal(last, kMaxSeconds);
  if (!f || !l) return Status::invalid("bad time");
  if (*l < *f) return Status::invalid("last_seen before first_seen");
  if (state != "wait" && state != "pass") return Status::invalid(fmt::format("bad state '{}' (wait or pass)", state));
  auto s = decodeGreylistAddress(sender), r = decodeGreylistAddress(recipient);
  if (!s) return Status::invalid("bad sender field");
  if (!r || r->empty()) return Status::invalid("bad recipient field");
  if (toLower(*s) != *s || toLower(*r) != *r) return Status::invalid("addresses must be lowercase");
  GreylistEntry e;
  e.network = std::string(network);
  e.first_seen = static_cast<int64_t>(*f);
  e.last_seen = static_cast<int64_t>(*l);
  e.passed = state == "pass";
  e.sender = std::move(*s);
  e.recipient = std::move(*r);
  return e;
}

}  // namespace postern::protect
