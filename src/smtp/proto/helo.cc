// RFC 5321 §4.1.1.1 / §4.1.4 EHLO and HELO argument.
#include "smtp/proto/helo.h"

#include "smtp/proto/address.h"

namespace postern::smtp {
namespace {

bool isLabelChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

std::string_view heloArgumentError(std::string_view arg) {
  if (arg.empty()) return "empty host name";
  for (unsigned char c : arg)
    if (c == ' ' || c == '\t') return "only one host name or address literal is allowed";
  if (arg.front() == '[') return isValidAddressLiteral(arg) ? std::string_view() : "invalid address literal";
  if (arg.size() > kMaxDomainLength) return "host name longer than 255 characters";
  size_t label_start = 0;
  for (size_t i = 0; i <= arg.size(); ++i) {
    if (i < arg.size() && arg[i] != '.') {
      if (!isLabelChar(static_cast<unsigned char>(arg[i]))) return "invalid character in host name";
      continue;
    }
    std::string_view label = arg.substr(label_start, i - label_start);
    if (label.empty()) return "empty label in host name";
    if (label.size() > kMaxLabelLength) return "host name label longer than 63 characters";
    if (label.front() == '-' || label.back() == '-') return "host name label starts or ends with '-'";
    label_start = i + 1;
  }
  return {};
}

}  // namespace postern::smtp
