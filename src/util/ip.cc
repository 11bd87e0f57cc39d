#include "util/ip.h"

#include <arpa/inet.h>

#include <cstring>

#include "util/strings.h"

namespace postern {

IpAddress IpAddress::v4(const uint8_t b[4]) {
  IpAddress a;
  a.family_ = Family::kV4;
  std::memcpy(a.bytes_.data(), b, 4);
  return a;
}

IpAddress IpAddress::v6(const uint8_t b[16]) {
  IpAddress a;
  a.family_ = Family::kV6;
  std::memcpy(a.bytes_.data(), b, 16);
  return a;
}

std::optional<IpAddress> IpAddress::parseV4(std::string_view text) {
  // inet_pton(AF_INET) already refuses leading zeros ("01") and out-of-range octets.
  if (text.empty() || text.size() > 15 || text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[16];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  uint8_t b[4];
  if (inet_pton(AF_INET, buf, b) != 1) return std::nullopt;
  return v4(b);
}

std::optional<IpAddress> IpAddress::parseV6(std::string_view text) {
  if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  uint8_t b[16];
  if (inet_pton(AF_INET6, buf, b) != 1) return std::nullopt;
  return v6(b);
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.find(':') != std::string_view::npos) return parseV6(text);
  return parseV4(text);
}

IpAddress IpAddress::unmapped() const {
  if (isV4()) return *this;
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes_.data(), kPrefix, 12) == 0) return v4(bytes_.data() + 12);
  return *this;
}

bool IpAddress::isLoopback() const {
  IpAddress a = unmapped();
  if (a.isV4()) return a.bytes_[0] == 127;
  static const uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a.bytes_.data(), kLoop, 16) == 0;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::string IpAddress::reversedForDns() const {
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  if (isV4()) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(bytes_[i]);
      if (i) out += '.';
    }
    return out;
  }
  for (int i = 15; i >= 0; --i) {
    out += kHex[bytes_[i] & 0xf];
    out += '.';
    out += kHex[bytes_[i] >> 4];
    if (i) out += '.';
  }
  return out;
}

IpAddress IpAddress::masked(unsigned bits) const {
  IpAddress a = *this;
  unsigned total = static_cast<unsigned>(size()) * 8;
  for (unsigned i = 0; i < total; ++i) {
    if (i >= bits) a.bytes_[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
  }
  return a;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  text = trim(text);
  Cidr c;
  size_t slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned max = addr->isV4() ? 32 : 128;
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    auto b = parseDecimal(text.substr(slash + 1), max);
    if (!b) return std::nullopt;
    bits = static_cast<unsigned>(*b);
  }
  c.network_ = addr->masked(bits);
  c.bits_ = bits;
  // A network written with host bits set ("10.1.2.3/8") is almost always a typo.
  if (!(c.network_ == *addr)) return std::nullopt;
  return c;
}

bool Cidr::contains(const IpAddress& addr) const {
  IpAddress a = addr.unmapped();
  if (a.family() != network_.family()) {
    // An IPv4 network also matches IPv4-mapped IPv6 peers (handled by unmapped above);
    // nothing else crosses families.
    return false;
  }
  return a.masked(bits_) == network_;
}

std::string Cidr::toString() const { return network_.toString() + "/" + std::to_string(bits_); }

bool anyContains(const std::vector<Cidr>& nets, const IpAddress& addr) {
  for (const auto& n : nets)
    if (n.contains(addr)) return true;
  return false;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  Endpoint e;
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    auto a = IpAddress::parseV6(host);
    if (!a) return std::nullopt;
    e.address = *a;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    auto a = IpAddress::parseV4(host);
    if (!a) return std::nullopt;
    e.address = *a;
  }
  auto p = parseDecimal(port, 65535);
  if (!p) return std::nullopt;
  e.port = static_cast<uint16_t>(*p);
  return e;
}

std::string Endpoint::toString() const {
  if (address.isV4()) return address.toString() + ":" + std::to_string(port);
  return "[" + address.toString() + "]:" + std::to_string(port);
}

}  // namespace postern
