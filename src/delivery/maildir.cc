#include "delivery/maildir.h"

#include <fmt/format.h>

#include <cstring>

namespace postern::delivery {

std::string maildirHost(std::string_view hostname) {
  std::string out;
  for (char c : hostname) {
    if (c == '/') out += "\\057";
    else if (c == ':') out += "\\072";
    else out += c;
  }
  return out;
}

std::string maildirName(uint64_t accepted_us, uint32_t pid, uint64_t seq, std::string_view host, uint64_t size) {
  return fmt::format("{}.M{}P{}Q{}.{},S={}", accepted_us / 1'000'000, accepted_us % 1'000'000, pid, seq, host, size);
}

Result<std::string> mailboxDir(const std::string& root, std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size())
    return Status::invalid(fmt::format("not a mailbox address: {}", address));
  std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  auto unsafe = [](std::string_view part) {
    return part.empty() || part == "." || part == ".." || part.find('/') != std::string_view::npos ||
           part.find('\0') != std::string_view::npos;
  };
  if (unsafe(local) || unsafe(domain)) return Status::invalid(fmt::format("unsafe mailbox address: {}", address));
  return fmt::format("{}/{}/{}", root, domain, local);
}

std::string renderForMaildir(std::string_view mail_from, std::string_view delivered_to, std::string_view message) {
  std::string out;
  out.reserve(message.size() + mail_from.size() + delivered_to.size() + 40);
  out += "Return-Path: <";
  out += mail_from;
  out += ">\nDelivered-To: ";
  out += delivered_to;
  out += '\n';
  // CRLF -> LF in runs: copy up to each CR that starts a CRLF.
  size_t pos = 0;
  while (pos < message.size()) {
    const void* hit = std::memchr(message.data() + pos, '\r', message.size() - pos);
    size_t cr = hit ? static_cast<size_t>(static_cast<const char*>(hit) - message.data()) : message.size();
    out.append(message.substr(pos, cr - pos));
    if (cr >= message.size()) break;
    if (cr + 1 < message.size() && message[cr + 1] == '\n') {
      pos = cr + 1;  // drop the CR, keep the LF
    } else {
      out += '\r';
      pos = cr + 1;
    }
  }
  return out;
}

}  // namespace postern::delivery
