// The HAProxy PROXY protocol, versions 1 and 2, as a pure parser over the first bytes of a
// connection. Implements "The PROXY protocol, Versions 1 & 2" (haproxy doc/proxy-protocol.txt,
// revision 2020/03/05): section 2.1 (human-readable v1 header), section 2.2 (binary v2 header)
// and sections 2.2.1-2.2.7 (TLVs, including CRC32C and the SSL sub-TLVs).
//
// The parser never touches a socket: the listener reads bytes, calls parse() on everything
// received so far, and acts on need-more / done / error. Which listeners expect a header is
// configuration, never guessed from the bytes (section 5); detectSignature() and
// describeNonProxy() exist only to write a precise log line when the configuration and the
// peer disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "util/ip.h"

namespace postern::proxy {

// Section 2.1: the longest v1 line ("PROXY UNKNOWN <ipv6> <ipv6> 65535 65535\r\n"), CRLF included.
inline constexpr size_t kV1MaxLength = 107;
// Section 2.2: "\r\n\r\n\0\r\nQUIT\n", then ver/cmd, fam/transport and a 16-bit length.
inline constexpr size_t kV2SignatureLength = 12;
inline constexpr size_t kV2HeaderFixedLength = 16;
// Section 2.2.5: PP2_TYPE_UNIQUE_ID carries "up to 128 bytes".
inline constexpr size_t kV2MaxUniqueIdLength = 128;
// Section 2.2.2: PP2_TYPE_AUTHORITY is the TLS server_name (a host name, at most 255 bytes);
// HAProxy's own receiver enforces the same cap.
inline constexpr size_t kV2MaxAuthorityLength = 255;
// The largest v2 header the wire format can express.
inline constexpr size_t kV2MaxLength = kV2HeaderFixedLength + 65535;
// The largest v2 header Postern accepts, whatever the configuration. Section 2 says both formats
// are designed to fit in 536 bytes; real senders stay well below 1 KiB (HAProxy with ALPN,
// AUTHORITY, UNIQUE_ID, SSL and CRC32C; AWS/GCP/Azure add one custom TLV of tens of bytes; the
// largest address block, AF_UNIX, is 216 bytes). 4 KiB of address block + TLVs leaves ample room
// while a peer can no longer make us buffer 64 KiB per connection. A header announcing more is
// rejected (kV2BadLength) as soon as its 16 fixed bytes have arrived.
inline constexpr size_t kV2MaxAcceptedLength = kV2HeaderFixedLength + 4096;
// A listener never needs to buffer more than this many bytes before parse() decides.
inline constexpr size_t kMaxAcceptedHeaderLength =
    kV1MaxLength > kV2MaxAcceptedLength ? kV1MaxLength : kV2MaxAcceptedLength;

enum class Version : uint8_t { kV1 = 1, kV2 = 2 };
// v2 LOCAL: the proxy's own connection (health check); serve it with the real endpoints.
// v1 is always kProxy.
enum class Command : uint8_t { kLocal, kProxy };
// v1 "UNKNOWN" is kUnspec. v2 PROXY with transport UNSPEC is kUnspec too (section 2.2: "the
// receiver should ignore address information").
enum class Family : uint8_t { kUnspec, kInet, kInet6, kUnix };

// Section 2.2.6: PP2_TYPE_SSL and its sub-TLVs, as sent by the proxy that terminated TLS.
struct SslInfo {
  bool present = false;
  uint8_t client = 0;   // PP2_CLIENT_SSL 0x01 | PP2_CLIENT_CERT_CONN 0x02 | PP2_CLIENT_CERT_SESS 0x04
  uint32_t verify = 0;  // 0 when the client presented a certificate and it verified
  std::string_view version, cn, cipher, sig_alg, key_alg;  // sub-TLVs 0x21..0x25, empty when absent
};

struct Header {
  Version version = Version::kV1;
  Command command = Command::kProxy;
  // v2: the announced family when the family/transport byte names a known address layout (TCP
  // or UNIX stream; with LOCAL also DGRAM), else kUnspec. LOCAL never fills in addresses.
  Family family = Family::kUnspec;
  // Valid when hasAddresses(): the real client (src) and the address it connected to (dst).
  IpAddress src_addr, dst_addr;
  uint16_t src_port = 0, dst_port = 0;
  // Family kUnix with command kProxy: the 108-byte path fields up to their first NUL.
  std::string_view unix_src, unix_dst;
  // v2 TLVs (sections 2.2.1, 2.2.2, 2.2.5, 2.2.7); empty when absent.
  std::string_view alpn, authority, unique_id, netns;
  // Present => the header carried PP2_TYPE_CRC32C and it matched (a mismatch is kV2BadCrc).
  std::optional<uint32_t> crc32c;
  SslInfo ssl;
  // TLVs and SSL sub-TLVs of types this parser does not interpret (skipped, per section 2.2).
  uint16_t unknown_tlvs = 0;

  bool hasAddresses() const {
    return command == Command::kProxy && (family == Family::kInet || family == Family::kInet6);
  }
};

enum class Status : uint8_t { kNeedMore, kDone, kError };

enum class Error : uint8_t {
  kNone,
  kNotProxy,           // the first bytes match neither the v1 nor the v2 signature
  kV1TooLong,          // no CRLF within kV1MaxLength bytes
  kV1BadSyntax,        // spacing, field count
  kV1BadProtocol,      // not TCP4, TCP6 or UNKNOWN
  kV1BadAddress,       // not a valid address of the announced family
  kV1BadPort,          // not 0..65535 in decimal without sign or leading zero
  kV1MissingCrlf,      // a bare LF, or a CR not followed by LF
  kV2BadVersion,       // version nibble is not 2
  kV2BadCommand,       // neither LOCAL nor PROXY
  kV2BadFamily,        // PROXY with an address family other than UNSPEC/INET/INET6/UNIX
  kV2BadTransport,     // PROXY with DGRAM or an unassigned transport
  kV2BadLength,        // address block shorter than the family needs, or above kV2MaxAcceptedLength
  kV2TlvOverrun,       // a TLV (or SSL sub-TLV) runs past the end of its container
  kV2BadTlv,           // a TLV with an impossible length, or repeated where only one makes sense
  kV2BadCrc,           // PP2_TYPE_CRC32C does not match the header
  kV2UniqueIdTooLong,  // PP2_TYPE_UNIQUE_ID longer than kV2MaxUniqueIdLength
};

struct ParseResult {
  Status status = Status::kNeedMore;
  size_t consumed = 0;  // kDone: the header's exact length; 0 otherwise
  Header header;        // meaningful only with kDone
  Error error = Error::kNone;
  std::string_view reason;  // kError: a static, human-readable reason ("v1 port out of range")
};

// Parses the PROXY header (v1 or v2, auto-detected from the first byte) at the start of `input`.
// Pure and stateless: looks only at the bytes in [input.data(), input.data() + input.size()),
// allocates nothing, and after kNeedMore must be called again with the grown buffer (it re-parses
// from the start). Returns kError as soon as the bytes seen can no longer start a valid header,
// and kDone with `consumed` equal to the header's length: the bytes after it (TLS ClientHello,
// SMTP command, ...) are never looked at.
// The string_views in the returned header point into `input`: they are valid only as long as the
// caller keeps those bytes.
// The bytes of a buffer held as characters, for the functions below.
inline std::span<const uint8_t> asBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

ParseResult parse(std::span<const uint8_t> input);

// A stable snake_case token for logs and counters, e.g. "v1_bad_port".
const char* errorName(Error error);

// For diagnostics on listeners that do not expect a header: do these first bytes start a PROXY
// header? kV1 once "PROXY" is seen, kV2 once the 12-byte signature is seen, kNeedMore while the
// bytes are a strict prefix of either (including no bytes at all), kNone otherwise.
enum class Signature : uint8_t { kNeedMore, kV1, kV2, kNone };
Signature detectSignature(std::span<const uint8_t> input);

// For diagnostics when a header was required but something else arrived: a short description of
// what arrived, e.g. "a TLS ClientHello", "an SMTP command (EHLO)", "an IMAP command", "an HTTP
// request (GET)", "plain text", "binary data". The returned view refers to a static string.
std::string_view describeNonProxy(std::span<const uint8_t> input);

}  // namespace postern::proxy
