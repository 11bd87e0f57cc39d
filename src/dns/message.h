// A pure DNS message parser (RFC 1035 §4.1): header, question, answer, authority and
// additional sections, names with compression (§4.1.4), and decoders for the record data
// the mail server needs (A, AAAA, MX, TXT, CNAME, SOA, TLSA). It only reads the bytes it is
// given: no sockets, clocks or globals. Every limit is a named constant below.
//
// Names are returned in presentation form, lower case, without the trailing dot; the root
// is ".". Label bytes other than letters, digits, '-' and '_' are written as \DDD (RFC 1035
// §5.1), so a '.' inside a label can never be mistaken for a label boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/ip.h"
#include "util/status.h"

namespace postern::dns {

inline constexpr size_t kHeaderSize = 12;           // RFC 1035 §4.1.1
inline constexpr size_t kMaxMessageSize = 65535;    // a TCP message's 16-bit length
inline constexpr size_t kMaxNameWireLength = 255;   // RFC 1035 §3.1, length octets and root included
inline constexpr size_t kMaxLabelLength = 63;       // RFC 1035 §2.3.4
inline constexpr size_t kMaxPointerJumps = 32;      // compression pointers followed within one name
inline constexpr size_t kMaxRecords = 4096;         // all sections together; more is not a real answer
inline constexpr size_t kFixedRrSize = 10;          // TYPE, CLASS, TTL, RDLENGTH after the owner name
inline constexpr uint32_t kMaxTtl = 0x7fffffff;     // RFC 2181 §8: larger values mean zero

inline constexpr uint16_t kClassIn = 1;             // RFC 1035 §3.2.4

enum class RrType : uint16_t {
  kA = 1,
  kNs = 2,
  kCname = 5,
  kSoa = 6,
  kPtr = 12,
  kMx = 15,
  kTxt = 16,
  kAaaa = 28,
  kOpt = 41,
  kTlsa = 52,   // RFC 6698
  kAny = 255,
};
const char* rrTypeName(uint16_t type);   // "A", "MX", ...; "TYPE<n>" style is left to callers ("?")

// RFC 1035 §4.1.1 RCODE values (the 4 header bits; extended RCODEs are not read).
enum class Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};
std::string rcodeName(uint8_t rcode);   // "NOERROR", "SERVFAIL", ..., "RCODE11"

struct Header {
  uint16_t id = 0;
  bool qr = false;        // a response
  uint8_t opcode = 0;
  bool aa = false;
  bool tc = false;        // truncated
  bool rd = false;
  bool ra = false;
  bool ad = false;        // authentic data: the resolver validated the answer (RFC 4035 §3.2.3)
  bool cd = false;        // checking disabled (RFC 4035 §3.2.2)
  uint8_t rcode = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;
};

struct Question {
  std::string name;
  uint16_t type = 0;
  uint16_t klass = 0;
};

// One resource record. The record data stays in the message (names inside it may point
// anywhere earlier in the message); decode it with the functions below.
struct ResourceRecord {
  std::string name;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;              // values above kMaxTtl are read as 0 (RFC 2181 §8)
  size_t rdata_offset = 0;       // into Message::bytes
  uint16_t rdata_length = 0;
};

struct Message {
  std::vector<uint8_t> bytes;    // the whole message, which rdata_offset indexes
  Header header;
  std::vector<Question> questions;
  std::vector<ResourceRecord> answers;
  std::vector<ResourceRecord> authority;
  std::vector<ResourceRecord> additional;
};

// Parses a whole message. Errors (Status::corruption) name what is wrong and where:
// "truncated header", "name: compression loop at offset 40", ... Bytes after the last
// record are ignored.
Result<Message> parseMessage(std::span<const uint8_t> bytes);

// Reads the (possibly compressed) name starting at `offset`. Its uncompressed part must end
// by `limit`; on success `*next` is the offset just after it. Exposed for tests.
Result<std::string> readName(std::span<const uint8_t> msg, size_t offset, size_t limit, size_t* next);

// Record data. Each returns nullopt when the data does not have its type's form, e.g. an
// A record that is not 4 bytes, an MX whose name runs past its data.
struct MxData {
  uint16_t preference = 0;
  std::string exchange;   // "." for the null MX (RFC 7505)
};
struct SoaData {
  std::string mname;
  std::string rname;
  uint32_t serial = 0;
  uint32_t refresh = 0;
  uint32_t retry = 0;
  uint32_t expire = 0;
  uint32_t minimum = 0;   // RFC 2308 §4: the negative-caching TTL
};
// RFC 6698 §2.1.
struct TlsaData {
  uint8_t usage = 0;          // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE
  uint8_t selector = 0;       // 0 full certificate, 1 SubjectPublicKeyInfo
  uint8_t matching_type = 0;  // 0 exact, 1 SHA-256, 2 SHA-512
  std::vector<uint8_t> data;
  friend bool operator==(const TlsaData&, const TlsaData&) = default;
};

std::optional<IpAddress> decodeA(const Message& m, const ResourceRecord& rr);
std::optional<IpAddress> decodeAaaa(const Message& m, const ResourceRecord& rr);
std::optional<MxData> decodeMx(const Message& m, const ResourceRecord& rr);
std::optional<std::string> decodeCname(const Message& m, const ResourceRecord& rr);
// RFC 1035 §3.3.12: the domain name a PTR record points to.
std::optional<std::string> decodePtr(const Message& m, const ResourceRecord& rr);
// RFC 1035 §3.3.14: one or more character-strings, returned concatenated (RFC 7208 §3.3).
std::optional<std::string> decodeTxt(const Message& m, const ResourceRecord& rr);
// The character-strings of a TXT record one by one.
std::optional<std::vector<std::string>> decodeTxtStrings(const Message& m, const ResourceRecord& rr);
std::optional<SoaData> decodeSoa(const Message& m, const ResourceRecord& rr);
std::optional<TlsaData> decodeTlsa(const Message& m, const ResourceRecord& rr);

// A query name as the parser would print it: lower case, no trailing dot ("." for the root).
// Returns nullopt for names that are not usable host names or labels of one: empty labels,
// a label over 63 bytes, a name over 253 characters, bytes other than letters, digits,
// '-' and '_'.
std::optional<std::string> normalizeName(std::string_view name);

}  // namespace postern::dns
