// PROXY protocol v1/v2 parser. Section numbers refer to haproxy's doc/proxy-protocol.txt
// (revision 2020/03/05); the contract is in proxy_parser.h.
//
// Every function here only reads bytes inside the span it is given, allocates nothing and keeps
// no state between calls: the caller re-parses from the start when more bytes arrive. A header is
// short (<= kMaxAcceptedHeaderLength), so re-parsing costs less than tracking progress would.
#include "proxy/proxy_parser.h"

#include <algorithm>
#include <cstring>

#include "util/crc32c.h"
#include "util/strings.h"

namespace postern::proxy {
namespace {

// --- Section 2.1, v1 -------------------------------------------------------------------------

constexpr std::string_view kV1Signature = "PROXY";
constexpr size_t kV1PrefixLength = 6;  // "PROXY" and exactly one space
// After "PROXY": protocol, source address, destination address, source port, destination port.
enum V1Field : size_t { kFieldProtocol, kFieldSrcAddr, kFieldDstAddr, kFieldSrcPort, kFieldDstPort };
constexpr size_t kV1MaxIpv4Length = 15;  // "255.255.255.255"
// Section 2.1 describes the 39-byte full hex form; inet_pton also takes the IPv4-suffixed form
// ("::ffff:192.0.2.1", up to 45 bytes), which is still a valid IPv6 textual address.
constexpr size_t kV1MaxIpv6Length = 45;
constexpr size_t kV1MaxPortLength = 5;  // "65535"
constexpr uint64_t kMaxPort = 65535;

constexpr std::string_view kV1Tcp4 = "TCP4";
constexpr std::string_view kV1Tcp6 = "TCP6";
constexpr std::string_view kV1Unknown = "UNKNOWN";

// --- Section 2.2, v2 -------------------------------------------------------------------------

constexpr uint8_t kV2Signature[kV2SignatureLength] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2VerCmdOffset = 12;
constexpr size_t kV2FamOffset = 13;
constexpr size_t kV2LenOffset = 14;
constexpr uint8_t kV2Version = 0x2;
constexpr uint8_t kV2CmdLocal = 0x0;
constexpr uint8_t kV2CmdProxy = 0x1;
constexpr uint8_t kV2FamUnspec = 0x0;
constexpr uint8_t kV2FamInet = 0x1;
constexpr uint8_t kV2FamInet6 = 0x2;
constexpr uint8_t kV2FamUnix = 0x3;
constexpr uint8_t kV2TransUnspec = 0x0;
constexpr uint8_t kV2TransStream = 0x1;
constexpr uint8_t kV2TransDgram = 0x2;
constexpr size_t kV2AddrLenInet = 2 * 4 + 2 * 2;
constexpr size_t kV2AddrLenInet6 = 2 * 16 + 2 * 2;
constexpr size_t kV2UnixPathLength = 108;
constexpr size_t kV2AddrLenUnix = 2 * kV2UnixPathLength;

constexpr size_t kTlvHeaderLength = 3;  // type, length_hi, length_lo
constexpr size_t kCrc32cLength = 4;
constexpr size_t kSslFixedLength = 5;  // client (u8), verify (u32)

constexpr uint8_t kTypeAlpn = 0x01;
constexpr uint8_t kTypeAuthority = 0x02;
constexpr uint8_t kTypeCrc32c = 0x03;
constexpr uint8_t kTypeNoop = 0x04;
constexpr uint8_t kTypeUniqueId = 0x05;
constexpr uint8_t kTypeSsl = 0x20;
constexpr uint8_t kSubtypeSslVersion = 0x21;
constexpr uint8_t kSubtypeSslCn = 0x22;
constexpr uint8_t kSubtypeSslCipher = 0x23;
constexpr uint8_t kSubtypeSslSigAlg = 0x24;
constexpr uint8_t kSubtypeSslKeyAlg = 0x25;
constexpr uint8_t kTypeNetns = 0x30;

constexpr std::string_view kReasonNotProxy = "first bytes match neither the PROXY v1 nor the v2 signature";

// What a parsing step concluded; parse() turns it into a ParseResult.
struct Verdict {
  Status status;
  Error error = Error::kNone;
  std::string_view reason;
};

constexpr Verdict kNeedMore{Status::kNeedMore, Error::kNone, {}};
constexpr Verdict kDone{Status::kDone, Error::kNone, {}};
// A step (one field, one TLV) found nothing wrong; the caller goes on. Only kError is looked at.
constexpr Verdict kContinue = kNeedMore;

constexpr Verdict fail(Error error, std::string_view reason) {
  return Verdict{Status::kError, error, reason};
}

uint16_t readBe16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t readBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string_view viewOf(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// --- v1 ----------------------------------------------------------------------------------------

// Checks the field being received, `text` being its bytes so far (the last one just arrived), so
// that a line which can no longer become valid is rejected before its CRLF arrives.
Verdict checkV1FieldPrefix(size_t field, Family family, std::string_view text) {
  const char c = text.back();
  switch (field) {
    case kFieldProtocol:
      if (startsWith(kV1Tcp4, text) || startsWith(kV1Tcp6, text) || startsWith(kV1Unknown, text)) return kContinue;
      return fail(Error::kV1BadProtocol, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    case kFieldSrcAddr:
    case kFieldDstAddr:
      if (family == Family::kInet) {
        if ((isDigit(c) || c == '.') && text.size() <= kV1MaxIpv4Length) return kContinue;
        return fail(Error::kV1BadAddress, "v1 TCP4 address is not a dotted-quad IPv4 address");
      }
      if ((isHexDigit(c) || c == ':' || c == '.') && text.size() <= kV1MaxIpv6Length) return kContinue;
      return fail(Error::kV1BadAddress, "v1 TCP6 address is not an IPv6 address");
    default:  // ports
      if (!isDigit(c)) return fail(Error::kV1BadPort, "v1 port is not a decimal number");
      // Section 2.1: "Heading zeroes are not permitted in front of numbers"; "0" itself is a port.
      if (text.size() == 2 && text[0] == '0') return fail(Error::kV1BadPort, "v1 port has a leading zero");
      if (text.size() > kV1MaxPortLength) return fail(Error::kV1BadPort, "v1 port out of range");
      return kContinue;
  }
}

// Validates a complete field (terminated by a space or CR) and stores it in `header`.
Verdict finishV1Field(size_t field, std::string_view text, Header& header) {
  if (text.empty()) return fail(Error::kV1BadSyntax, "v1 fields must be separated by exactly one space");
  switch (field) {
    case kFieldProtocol:
      if (text == kV1Tcp4)
        header.family = Family::kInet;
      else if (text == kV1Tcp6)
        header.family = Family::kInet6;
      else if (text == kV1Unknown)
        header.family = Family::kUnspec;
      else
        return fail(Error::kV1BadProtocol, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
      return kContinue;
    case kFieldSrcAddr:
    case kFieldDstAddr: {
      const bool v4 = header.family == Family::kInet;
      auto addr = v4 ? IpAddress::parseV4(text) : IpAddress::parseV6(text);
      if (!addr) {
        return v4 ? fail(Error::kV1BadAddress, "v1 TCP4 address is not a valid IPv4 address")
                  : fail(Error::kV1BadAddress, "v1 TCP6 address is not a valid IPv6 address");
      }
      (field == kFieldSrcAddr ? header.src_addr : header.dst_addr) = *addr;
      return kContinue;
    }
    default: {
      auto port = parseDecimal(text, kMaxPort);
      if (!port) return fail(Error::kV1BadPort, "v1 port out of range");
      (field == kFieldSrcPort ? header.src_port : header.dst_port) = static_cast<uint16_t>(*port);
      return kContinue;
    }
  }
}

// Section 2.1: "PROXY" SP protocol [SP src SP dst SP sport SP dport] CRLF, at most 107 bytes.
Verdict parseV1(std::span<const uint8_t> in, Header& header, size_t& consumed) {
  const char* p = reinterpret_cast<const char*>(in.data());
  const size_t prefix = std::min(in.size(), kV1Signature.size());
  if (std::string_view(p, prefix) != kV1Signature.substr(0, prefix)) return fail(Error::kNotProxy, kReasonNotProxy);
  if (in.size() < kV1PrefixLength) return kNeedMore;
  if (p[kV1Signature.size()] != ' ') return fail(Error::kV1BadSyntax, "v1 \"PROXY\" must be followed by one space");

  header.version = Version::kV1;
  header.command = Command::kProxy;
  const size_t limit = std::min(in.size(), kV1MaxLength);
  size_t field = kFieldProtocol;
  size_t start = kV1PrefixLength;
  // Section 2.1: after "UNKNOWN" the receiver "must ignore anything presented before the CRLF".
  bool ignoring = false;
  for (size_t i = kV1PrefixLength; i < limit; ++i) {
    const char c = p[i];
    if (c == '\n') return fail(Error::kV1MissingCrlf, "v1 line ends with a bare LF");
    if (c != '\r' && (c != ' ' || ignoring)) {
      if (!ignoring) {
        Verdict v = checkV1FieldPrefix(field, header.family, std::string_view(p + start, i + 1 - start));
        if (v.status == Status::kError) return v;
      }
      continue;
    }
    if (!ignoring) {
      Verdict v = finishV1Field(field, std::string_view(p + start, i - start), header);
      if (v.status == Status::kError) return v;
    }
    if (c == ' ') {
      if (field == kFieldDstPort) return fail(Error::kV1BadSyntax, "v1 line has data after the destination port");
      ++field;
      start = i + 1;
      ignoring = header.family == Family::kUnspec;
      continue;
    }
    // CR: the line ends here, complete only if every field of a TCP line was given.
    if (header.family != Family::kUnspec && field != kFieldDstPort)
      return fail(Error::kV1BadSyntax, "v1 line ends before its addresses and ports");
    if (i + 1 >= kV1MaxLength) return fail(Error::kV1TooLong, "v1 line longer than 107 bytes");
    if (i + 1 >= in.size()) return kNeedMore;
    if (p[i + 1] != '\n') return fail(Error::kV1MissingCrlf, "v1 CR not followed by LF");
    consumed = i + 2;
    return kDone;
  }
  if (in.size() >= kV1MaxLength) return fail(Error::kV1TooLong, "v1 line has no CRLF within 107 bytes");
  return kNeedMore;
}

// --- v2 ----------------------------------------------------------------------------------------

// Where the address block ends and TLVs start depends on the family and transport (section 2.2).
struct AddressLayout {
  bool known = false;  // false: the block's layout is unspecified; it is skipped whole, TLVs unread
  size_t length = 0;   // bytes of addresses (and ports) before the first TLV
  Family family = Family::kUnspec;
};

AddressLayout addressLayout(uint8_t fam, uint8_t transport) {
  if (fam == kV2FamUnspec) return {transport <= kV2TransDgram, 0, Family::kUnspec};
  // "UNSPEC [transport]: ... the receiver should ignore address information": with no transport
  // the address block has no specified layout.
  if (transport == kV2TransUnspec || transport > kV2TransDgram) return {};
  switch (fam) {
    case kV2FamInet: return {true, kV2AddrLenInet, Family::kInet};
    case kV2FamInet6: return {true, kV2AddrLenInet6, Family::kInet6};
    case kV2FamUnix: return {true, kV2AddrLenUnix, Family::kUnix};
    default: return {};
  }
}

// One TLV inside [.., end): its type and value, `off` moved past it.
struct Tlv {
  uint8_t type = 0;
  size_t value = 0;  // offset of the value
  size_t length = 0;
};

bool nextTlv(const uint8_t* base, size_t& off, size_t end, Tlv& tlv) {
  if (end - off < kTlvHeaderLength) return false;
  tlv.type = base[off];
  tlv.length = readBe16(base + off + 1);
  tlv.value = off + kTlvHeaderLength;
  if (tlv.length > end - tlv.value) return false;
  off = tlv.value + tlv.length;
  return true;
}

void countUnknown(Header& header) {
  if (header.unknown_tlvs < UINT16_MAX) ++header.unknown_tlvs;
}

// Section 2.2.6: client, verify, then sub-TLVs filling the rest of the SSL TLV.
Verdict parseSsl(const uint8_t* base, const Tlv& tlv, Header& header) {
  if (tlv.length < kSslFixedLength) return fail(Error::kV2BadTlv, "v2 SSL TLV shorter than its 5 fixed bytes");
  SslInfo& ssl = header.ssl;
  ssl.present = true;
  ssl.client = base[tlv.value];
  ssl.verify = readBe32(base + tlv.value + 1);
  const size_t end = tlv.value + tlv.length;
  size_t off = tlv.value + kSslFixedLength;
  uint32_t seen = 0;
  while (off < end) {
    Tlv sub;
    if (!nextTlv(base, off, end, sub)) return fail(Error::kV2TlvOverrun, "v2 SSL sub-TLV runs past the SSL TLV");
    std::string_view* field = nullptr;
    switch (sub.type) {
      case kSubtypeSslVersion: field = &ssl.version; break;
      case kSubtypeSslCn: field = &ssl.cn; break;
      case kSubtypeSslCipher: field = &ssl.cipher; break;
      case kSubtypeSslSigAlg: field = &ssl.sig_alg; break;
      case kSubtypeSslKeyAlg: field = &ssl.key_alg; break;
      default: countUnknown(header); continue;
    }
    const uint32_t bit = 1u << (sub.type - kSubtypeSslVersion);
    if (seen & bit) return fail(Error::kV2BadTlv, "v2 SSL sub-TLV repeated");
    seen |= bit;
    *field = viewOf(base + sub.value, sub.length);
  }
  return kContinue;
}

// Sections 2.2.1-2.2.7: the TLVs in [begin, total). `base` is the whole header, for the CRC.
Verdict parseTlvs(const uint8_t* base, size_t begin, size_t total, Header& header) {
  size_t off = begin;
  size_t crc_offset = 0;  // of the CRC32C value, when present
  uint32_t seen = 0;      // bit per singular TLV type already met
  while (off < total) {
    Tlv tlv;
    if (!nextTlv(base, off, total, tlv)) return fail(Error::kV2TlvOverrun, "v2 TLV runs past the end of the header");
    const std::string_view value = viewOf(base + tlv.value, tlv.length);
    uint32_t bit = 0;
    switch (tlv.type) {
      case kTypeAlpn:
        bit = 1u << 0;
        header.alpn = value;
        break;
      case kTypeAuthority:
        if (tlv.length > kV2MaxAuthorityLength) return fail(Error::kV2BadTlv, "v2 AUTHORITY longer than 255 bytes");
        bit = 1u << 1;
        header.authority = value;
        break;
      case kTypeCrc32c:
        if (tlv.length != kCrc32cLength) return fail(Error::kV2BadTlv, "v2 CRC32C TLV is not 4 bytes long");
        bit = 1u << 2;
        crc_offset = tlv.value;
        break;
      case kTypeNoop:  // section 2.2.4: padding, any length, ignored
        break;
      case kTypeUniqueId:
        if (tlv.length > kV2MaxUniqueIdLength)
          return fail(Error::kV2UniqueIdTooLong, "v2 UNIQUE_ID longer than 128 bytes");
        bit = 1u << 3;
        header.unique_id = value;
        break;
      case kTypeSsl: {
        bit = 1u << 4;
        if (seen & bit) break;  // reported below
        Verdict v = parseSsl(base, tlv, header);
        if (v.status == Status::kError) return v;
        break;
      }
      case kTypeNetns:
        bit = 1u << 5;
        header.netns = value;
        break;
      default: countUnknown(header); break;
    }
    if (seen & bit) return fail(Error::kV2BadTlv, "v2 TLV repeated (only one of each kind is allowed)");
    seen |= bit;
  }
  if (crc_offset != 0) {
    // Section 2.2.3: the CRC32c of the whole header with the checksum field set to zero.
    static constexpr uint8_t kZeros[kCrc32cLength] = {};
    const uint32_t received = readBe32(base + crc_offset);
    uint32_t crc = crc32c(0, base, crc_offset);
    crc = crc32c(crc, kZeros, kCrc32cLength);
    crc = crc32c(crc, base + crc_offset + kCrc32cLength, total - crc_offset - kCrc32cLength);
    if (crc != received) return fail(Error::kV2BadCrc, "v2 CRC32C does not match the header");
    header.crc32c = received;
  }
  return kDone;
}

// Section 2.2: 12-byte signature, version/command, family/transport, length, addresses, TLVs.
Verdict parseV2(std::span<const uint8_t> in, Header& header, size_t& consumed) {
  const uint8_t* p = in.data();
  if (std::memcmp(p, kV2Signature, std::min(in.size(), kV2SignatureLength)) != 0)
    return fail(Error::kNotProxy, kReasonNotProxy);
  // Each fixed byte is judged as soon as it arrives.
  if (in.size() <= kV2VerCmdOffset) return kNeedMore;
  if ((p[kV2VerCmdOffset] >> 4) != kV2Version) return fail(Error::kV2BadVersion, "v2 version is not 2");
  const uint8_t command = p[kV2VerCmdOffset] & 0x0F;
  if (command != kV2CmdLocal && command != kV2CmdProxy)
    return fail(Error::kV2BadCommand, "v2 command is neither LOCAL nor PROXY");
  const bool local = command == kV2CmdLocal;

  if (in.size() <= kV2FamOffset) return kNeedMore;
  const uint8_t fam = p[kV2FamOffset] >> 4;
  const uint8_t transport = p[kV2FamOffset] & 0x0F;
  // LOCAL: "the receiver must ... discard the protocol block including the family which is ignored".
  if (!local) {
    if (fam > kV2FamUnix) return fail(Error::kV2BadFamily, "v2 address family is not UNSPEC, INET, INET6 or UNIX");
    if (transport == kV2TransDgram)
      return fail(Error::kV2BadTransport, "v2 DGRAM (UDP) transport: a mail server accepts only STREAM");
    if (transport != kV2TransUnspec && transport != kV2TransStream)
      return fail(Error::kV2BadTransport, "v2 transport is not UNSPEC or STREAM");
  }

  if (in.size() < kV2HeaderFixedLength) return kNeedMore;
  const size_t length = readBe16(p + kV2LenOffset);
  const size_t total = kV2HeaderFixedLength + length;
  if (total > kV2MaxAcceptedLength) return fail(Error::kV2BadLength, "v2 header longer than the 4 KiB Postern accepts");
  const AddressLayout layout = addressLayout(fam, transport);
  if (!local && layout.known && length < layout.length)
    return fail(Error::kV2BadLength, "v2 address block shorter than the family's addresses");
  // "The receiver must not start to parse an address before the whole address block is received."
  if (in.size() < total) return kNeedMore;

  header.version = Version::kV2;
  header.command = local ? Command::kLocal : Command::kProxy;
  header.family = layout.family;
  // An unspecified layout (PROXY with transport UNSPEC; LOCAL with an unassigned family or
  // transport), or LOCAL with a block shorter than its family's addresses: skipped whole, unread.
  if (!layout.known || length < layout.length) {
    consumed = total;
    return kDone;
  }
  const uint8_t* addr = p + kV2HeaderFixedLength;
  if (!local) {
    switch (layout.family) {
      case Family::kInet:
        header.src_addr = IpAddress::v4(addr);
        header.dst_addr = IpAddress::v4(addr + 4);
        header.src_port = readBe16(addr + 8);
        header.dst_port = readBe16(addr + 10);
        break;
      case Family::kInet6:
        header.src_addr = IpAddress::v6(addr);
        header.dst_addr = IpAddress::v6(addr + 16);
        header.src_port = readBe16(addr + 32);
        header.dst_port = readBe16(addr + 34);
        break;
      case Family::kUnix: {
        auto path = [](const uint8_t* b) {
          const void* nul = std::memchr(b, 0, kV2UnixPathLength);
          return viewOf(b, nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - b) : kV2UnixPathLength);
        };
        header.unix_src = path(addr);
        header.unix_dst = path(addr + kV2UnixPathLength);
        break;
      }
      case Family::kUnspec: break;
    }
  }
  Verdict v = parseTlvs(p, kV2HeaderFixedLength + layout.length, total, header);
  if (v.status != Status::kDone) return v;
  consumed = total;
  return kDone;
}

// --- diagnostics -------------------------------------------------------------------------------

struct Keyword {
  std::string_view word;
  std::string_view description;
};

constexpr Keyword kSmtpCommands[] = {
    {"EHLO", "an SMTP command (EHLO)"}, {"HELO", "an SMTP command (HELO)"}, {"LHLO", "an LMTP command (LHLO)"},
    {"MAIL", "an SMTP command (MAIL)"}, {"RCPT", "an SMTP command (RCPT)"}, {"DATA", "an SMTP command (DATA)"},
    {"BDAT", "an SMTP command (BDAT)"}, {"RSET", "an SMTP command (RSET)"}, {"NOOP", "an SMTP command (NOOP)"},
    {"QUIT", "an SMTP command (QUIT)"}, {"VRFY", "an SMTP command (VRFY)"}, {"EXPN", "an SMTP command (EXPN)"},
    {"HELP", "an SMTP command (HELP)"}, {"AUTH", "an SMTP command (AUTH)"}, {"STARTTLS", "an SMTP command (STARTTLS)"},
};

constexpr Keyword kPop3Commands[] = {
    {"USER", "a POP3 command (USER)"}, {"PASS", "a POP3 command (PASS)"}, {"APOP", "a POP3 command (APOP)"},
    {"CAPA", "a POP3 command (CAPA)"}, {"STLS", "a POP3 command (STLS)"}, {"STAT", "a POP3 command (STAT)"},
    {"UIDL", "a POP3 command (UIDL)"}, {"RETR", "a POP3 command (RETR)"},
};

constexpr Keyword kHttpMethods[] = {
    {"GET", "an HTTP request (GET)"},         {"POST", "an HTTP request (POST)"},
    {"HEAD", "an HTTP request (HEAD)"},       {"PUT", "an HTTP request (PUT)"},
    {"DELETE", "an HTTP request (DELETE)"},   {"OPTIONS", "an HTTP request (OPTIONS)"},
    {"CONNECT", "an HTTP request (CONNECT)"}, {"PATCH", "an HTTP request (PATCH)"},
    {"TRACE", "an HTTP request (TRACE)"},
};

// Commands an IMAP client may send before logging in (RFC 9051 section 6.1-6.2) and common ones.
constexpr std::string_view kImapCommands[] = {
    "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "ID", "ENABLE", "SELECT", "EXAMINE",
};

constexpr size_t kTextSniffLength = 64;  // bytes looked at to tell text from binary

// `word` at the start of `s` (ASCII case-insensitive), followed by a space, CR, LF or the end.
bool startsWithCommand(std::string_view s, std::string_view word) {
  if (s.size() < word.size() || !iequals(s.substr(0, word.size()), word)) return false;
  if (s.size() == word.size()) return true;
  const char next = s[word.size()];
  return next == ' ' || next == '\r' || next == '\n';
}

bool isImapTagChar(char c) {
  // RFC 9051 tag: ASTRING-CHAR except "+"; this is a heuristic, so letters, digits and a few marks.
  return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
}

bool looksLikeImap(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && i < kTextSniffLength && isImapTagChar(s[i])) ++i;
  if (i == 0 || i >= s.size() || s[i] != ' ') return false;
  const std::string_view rest = s.substr(i + 1);
  for (std::string_view command : kImapCommands)
    if (startsWithCommand(rest, command)) return true;
  return false;
}

}  // namespace

ParseResult parse(std::span<const uint8_t> input) {
  ParseResult result;
  if (input.empty()) return result;
  Verdict verdict = kNeedMore;
  if (input[0] == static_cast<uint8_t>(kV1Signature[0]))
    verdict = parseV1(input, result.header, result.consumed);
  else if (input[0] == kV2Signature[0])
    verdict = parseV2(input, result.header, result.consumed);
  else
    verdict = fail(Error::kNotProxy, kReasonNotProxy);
  result.status = verdict.status;
  result.error = verdict.error;
  result.reason = verdict.reason;
  if (verdict.status != Status::kDone) {
    // Nothing half-parsed leaks out of an incomplete or invalid header.
    result.header = Header();
    result.consumed = 0;
  }
  return result;
}

const char* errorName(Error error) {
  switch (error) {
    case Error::kNone: return "none";
    case Error::kNotProxy: return "not_proxy";
    case Error::kV1TooLong: return "v1_too_long";
    case Error::kV1BadSyntax: return "v1_bad_syntax";
    case Error::kV1BadProtocol: return "v1_bad_protocol";
    case Error::kV1BadAddress: return "v1_bad_address";
    case Error::kV1BadPort: return "v1_bad_port";
    case Error::kV1MissingCrlf: return "v1_missing_crlf";
    case Error::kV2BadVersion: return "v2_bad_version";
    case Error::kV2BadCommand: return "v2_bad_command";
    case Error::kV2BadFamily: return "v2_bad_family";
    case Error::kV2BadTransport: return "v2_bad_transport";
    case Error::kV2BadLength: return "v2_bad_length";
    case Error::kV2TlvOverrun: return "v2_tlv_overrun";
    case Error::kV2BadTlv: return "v2_bad_tlv";
    case Error::kV2BadCrc: return "v2_bad_crc";
    case Error::kV2UniqueIdTooLong: return "v2_unique_id_too_long";
  }
  return "unknown";
}

Signature detectSignature(std::span<const uint8_t> input) {
  const size_t v1 = std::min(input.size(), kV1Signature.size());
  if (viewOf(input.data(), v1) == kV1Signature.substr(0, v1))
    return input.size() >= kV1Signature.size() ? Signature::kV1 : Signature::kNeedMore;
  const size_t v2 = std::min(input.size(), kV2SignatureLength);
  if (std::memcmp(input.data(), kV2Signature, v2) == 0)
    return input.size() >= kV2SignatureLength ? Signature::kV2 : Signature::kNeedMore;
  return Signature::kNone;
}

std::string_view describeNonProxy(std::span<const uint8_t> input) {
  if (input.empty()) return "no data";
  switch (detectSignature(input)) {
    case Signature::kV1: return "a PROXY v1 header";
    case Signature::kV2: return "a PROXY v2 header";
    default: break;
  }
  const uint8_t* b = input.data();
  const size_t n = input.size();
  // TLS record header (RFC 8446 section 5.1): type, legacy version 3.x, length; then for a
  // handshake record the handshake type, 1 being ClientHello.
  constexpr uint8_t kTlsHandshake = 0x16, kTlsMajor = 0x03, kTlsClientHello = 0x01;
  if (b[0] == kTlsHandshake && (n < 2 || b[1] == kTlsMajor)) {
    if (n > 5 && b[5] != kTlsClientHello) return "a TLS handshake record (not a ClientHello)";
    return "a TLS ClientHello";
  }
  if (b[0] >= 0x14 && b[0] <= 0x17 && n >= 3 && b[1] == kTlsMajor && b[2] <= 0x04) return "a TLS record";
  // SSL 2.0-format ClientHello (two-byte length with the top bit set, message type 1).
  if ((b[0] & 0x80) && n >= 4 && b[2] == kTlsClientHello && (b[3] == 0x02 || b[3] == 0x03))
    return "an SSLv2-format ClientHello";

  const std::string_view text = viewOf(b, n);
  if (startsWith(text, "SSH-")) return "an SSH client banner";
  if (startsWith(text, "PRI * HTTP/2")) return "an HTTP/2 connection preface";
  for (const Keyword& k : kHttpMethods)
    if (startsWith(text, k.word) && n > k.word.size() && text[k.word.size()] == ' ') return k.description;
  for (const Keyword& k : kSmtpCommands)
    if (startsWithCommand(text, k.word)) return k.description;
  for (const Keyword& k : kPop3Commands)
    if (startsWithCommand(text, k.word)) return k.description;
  if (looksLikeImap(text)) return "an IMAP command";

  const size_t sniff = std::min(n, kTextSniffLength);
  for (size_t i = 0; i < sniff; ++i) {
    const uint8_t c = b[i];
    if ((c < 0x20 || c > 0x7E) && c != '\t' && c != '\r' && c != '\n') return "binary data";
  }
  return "plain text";
}

}  // namespace postern::proxy
