// IP addresses, CIDR networks and host:port endpoints, independent of any socket
// library so parsers and the configuration can use them without asio.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern {

class IpAddress {
 public:
  enum class Family : uint8_t { kV4, kV6 };

  IpAddress() = default;
  static IpAddress v4(const uint8_t bytes[4]);
  static IpAddress v6(const uint8_t bytes[16]);
  // Strict textual forms: dotted quad (no leading zeros beyond "0"), RFC 4291 IPv6.
  static std::optional<IpAddress> parse(std::string_view text);
  static std::optional<IpAddress> parseV4(std::string_view text);
  static std::optional<IpAddress> parseV6(std::string_view text);

  Family family() const { return family_; }
  bool isV4() const { return family_ == Family::kV4; }
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its IPv4 address; others unchanged.
  IpAddress unmapped() const;
  bool isLoopback() const;
  const uint8_t* bytes() const { return bytes_.data(); }
  size_t size() const { return isV4() ? 4 : 16; }
  std::string toString() const;
  // IPv4 reversed octets / IPv6 reversed nibbles, for DNS lookups (no trailing dot).
  std::string reversedForDns() const;
  // This address with all but the first `bits` bits cleared.
  IpAddress masked(unsigned bits) const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) = default;
  friend auto operator<=>(const IpAddress& a, const IpAddress& b) = default;

 private:
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

class Cidr {
 public:
  // "10.0.0.0/8", "::1/128", or a bare address (a host network).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& addr) const;
  const IpAddress& network() const { return network_; }
  unsigned prefixLength() const { return bits_; }
  bool isEverything() const { return bits_ == 0; }
  std::string toString() const;

 private:
  IpAddress network_;
  unsigned bits_ = 0;
};

bool anyContains(const std::vector<Cidr>& nets, const IpAddress& addr);

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;
  // "1.2.3.4:25", "[::1]:25". Port is required.
  static std::optional<Endpoint> parse(std::string_view text);
  std::string toString() const;  // "1.2.3.4:25" or "[::1]:25"
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

}  // namespace postern
