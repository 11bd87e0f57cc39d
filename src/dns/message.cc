// RFC 1035 §4.1 message parsing. See message.h.
#include "dns/message.h"

#include <fmt/format.h>

namespace postern::dns {
namespace {

constexpr uint8_t kPointerMask = 0xc0;    // RFC 1035 §4.1.4: the two high bits of a pointer
constexpr size_t kMaxNameTextLength = 253;   // a name in presentation form, no trailing dot
constexpr size_t kMxFixedSize = 2;           // PREFERENCE
constexpr size_t kSoaTimersSize = 20;        // SERIAL REFRESH RETRY EXPIRE MINIMUM
constexpr size_t kTlsaFixedSize = 3;         // usage, selector, matching type
constexpr size_t kIpv4Size = 4;
constexpr size_t kIpv6Size = 16;

uint16_t get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
uint32_t get32(std::span<const uint8_t> b, size_t at) {
  return (static_cast<uint32_t>(b[at]) << 24) | (static_cast<uint32_t>(b[at + 1]) << 16) |
         (static_cast<uint32_t>(b[at + 2]) << 8) | b[at + 3];
}

bool plainLabelByte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

void appendLabel(std::string& out, std::span<const uint8_t> label) {
  if (!out.empty()) out += '.';
  for (uint8_t c : label) {
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
    if (plainLabelByte(c)) out += static_cast<char>(c);
    else out += fmt::format("\\{:03}", c);
  }
}

Status corrupt(std::string what) { return Status::corruption(std::move(what)); }

// One record (owner, fixed part, data bounds) at `*offset`; advances it.
Result<ResourceRecord> readRecord(std::span<const uint8_t> msg, size_t* offset, const char* section) {
  ResourceRecord rr;
  size_t at = *offset;
  auto name = readName(msg, at, msg.size(), &at);
  if (!name) return corrupt(fmt::format("{} record at offset {}: {}", section, *offset, name.status().message()));
  rr.name = std::move(*name);
  if (msg.size() - at < kFixedRrSize) return corrupt(fmt::format("{} record at offset {}: truncated", section, *offset));
  rr.type = get16(msg, at);
  rr.klass = get16(msg, at + 2);
  rr.ttl = get32(msg, at + 4);
  if (rr.ttl > kMaxTtl) rr.ttl = 0;
  rr.rdata_length = get16(msg, at + 8);
  at += kFixedRrSize;
  if (msg.size() - at < rr.rdata_length)
    return corrupt(fmt::format("{} record at offset {}: data length {} runs past the message", section, *offset,
                               rr.rdata_length));
  rr.rdata_offset = at;
  *offset = at + rr.rdata_length;
  return rr;
}

std::span<const uint8_t> rdata(const Message& m, const ResourceRecord& rr) {
  // Records from parseMessage always lie inside the message; a hand-made one might not.
  if (rr.rdata_offset > m.bytes.size() || m.bytes.size() - rr.rdata_offset < rr.rdata_length) return {};
  return std::span<const uint8_t>(m.bytes).subspan(rr.rdata_offset, rr.rdata_length);
}

bool rdataValid(const Message& m, const ResourceRecord& rr) {
  return rr.rdata_offset <= m.bytes.size() && m.bytes.size() - rr.rdata_offset >= rr.rdata_length;
}

// A name that fills [*at, end) of the record data exactly or is followed by more fields.
std::optional<std::string> nameIn(const Message& m, size_t* at, size_t end) {
  auto n = readName(m.bytes, *at, end, at);
  if (!n) return std::nullopt;
  return std::move(*n);
}

}  // namespace

const char* rrTypeName(uint16_t type) {
  switch (static_cast<RrType>(type)) {
    case RrType::kA: return "A";
    case RrType::kNs: return "NS";
    case RrType::kCname: return "CNAME";
    case RrType::kSoa: return "SOA";
    case RrType::kPtr: return "PTR";
    case RrType::kMx: return "MX";
    case RrType::kTxt: return "TXT";
    case RrType::kAaaa: return "AAAA";
    case RrType::kOpt: return "OPT";
    case RrType::kTlsa: return "TLSA";
    case RrType::kAny: return "ANY";
  }
  return "?";
}

std::string rcodeName(uint8_t rcode) {
  switch (static_cast<Rcode>(rcode)) {
    case Rcode::kNoError: return "NOERROR";
    case Rcode::kFormErr: return "FORMERR";
    case Rcode::kServFail: return "SERVFAIL";
    case Rcode::kNxDomain: return "NXDOMAIN";
    case Rcode::kNotImp: return "NOTIMP";
    case Rcode::kRefused: return "REFUSED";
  }
  return fmt::format("RCODE{}", rcode);
}

Result<std::string> readName(std::span<const uint8_t> msg, size_t offset, size_t limit, size_t* next) {
  if (limit > msg.size()) limit = msg.size();
  std::string out;
  size_t at = offset;
  size_t wire_length = 0;
  size_t jumps = 0;
  bool jumped = false;
  // Pointers must point strictly before the pointer itself: with that, a loop is
  // impossible; kMaxPointerJumps bounds the work on long backward chains as well.
  for (;;) {
    size_t end = jumped ? msg.size() : limit;
    if (at >= end) return corrupt(fmt::format("name at offset {}: truncated", offset));
    uint8_t len = msg[at];
    if ((len & kPointerMask) == kPointerMask) {
      if (end - at < 2) return corrupt(fmt::format("name at offset {}: truncated pointer", offset));
      size_t target = get16(msg, at) & 0x3fff;
      if (target >= at) return corrupt(fmt::format("name at offset {}: compression loop at offset {}", offset, at));
      if (++jumps > kMaxPointerJumps)
        return corrupt(fmt::format("name at offset {}: more than {} compression pointers", offset, kMaxPointerJumps));
      if (!jumped) *next = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if (len & kPointerMask) {   // 01xxxxxx, 10xxxxxx: extended label types (RFC 6891 §5), unused
      return corrupt(fmt::format("name at offset {}: unsupported label type 0x{:02x}", offset, len));
    }
    wire_length += 1 + len;
    if (wire_length > kMaxNameWireLength)
      return corrupt(fmt::format("name at offset {}: longer than {} bytes", offset, kMaxNameWireLength));
    if (len == 0) {
      if (!jumped) *next = at + 1;
      break;
    }
    if (end - at - 1 < len) return corrupt(fmt::format("name at offset {}: label runs past the end", offset));
    appendLabel(out, msg.subspan(at + 1, len));
    at += 1 + len;
  }
  if (out.empty()) out = ".";
  return out;
}

Result<Message> parseMessage(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxMessageSize) return corrupt(fmt::format("message of {} bytes is too long", bytes.size()));
  if (bytes.size() < kHeaderSize) return corrupt("truncated header");
  Message m;
  m.bytes.assign(bytes.begin(), bytes.end());
  std::span<const uint8_t> b(m.bytes);
  Header& h = m.header;
  h.id = get16(b, 0);
  uint8_t f1 = b[2], f2 = b[3];
  h.qr = f1 & 0x80;
  h.opcode = (f1 >> 3) & 0x0f;
  h.aa = f1 & 0x04;
  h.tc = f1 & 0x02;
  h.rd = f1 & 0x01;
  h.ra = f2 & 0x80;
  h.ad = f2 & 0x20;
  h.cd = f2 & 0x10;
  h.rcode = f2 & 0x0f;
  h.qdcount = get16(b, 4);
  h.ancount = get16(b, 6);
  h.nscount = get16(b, 8);
  h.arcount = get16(b, 10);
  if (static_cast<size_t>(h.qdcount) + h.ancount + h.nscount + h.arcount > kMaxRecords)
    return corrupt(fmt::format("more than {} questions and records", kMaxRecords));

  size_t at = kHeaderSize;
  for (uint16_t i = 0; i < h.qdcount; ++i) {
    size_t start = at;
    auto name = readName(b, at, b.size(), &at);
    if (!name) return corrupt(fmt::format("question at offset {}: {}", start, name.status().message()));
    if (b.size() - at < 4) return corrupt(fmt::format("question at offset {}: truncated", start));
    m.questions.push_back(Question{std::move(*name), get16(b, at), get16(b, at + 2)});
    at += 4;
  }
  struct Section {
    uint16_t count;
    std::vector<ResourceRecord>* out;
    const char* name;
  };
  for (const Section& s : {Section{h.ancount, &m.answers, "answer"}, Section{h.nscount, &m.authority, "authority"},
                           Section{h.arcount, &m.additional, "additional"}}) {
    s.out->reserve(s.count);
    for (uint16_t i = 0; i < s.count; ++i) {
      auto rr = readRecord(b, &at, s.name);
      if (!rr) return rr.status();
      s.out->push_back(std::move(*rr));
    }
  }
  return m;
}

std::optional<IpAddress> decodeA(const Message& m, const ResourceRecord& rr) {
  if (rr.rdata_length != kIpv4Size || !rdataValid(m, rr)) return std::nullopt;
  return IpAddress::v4(rdata(m, rr).data());
}

std::optional<IpAddress> decodeAaaa(const Message& m, const ResourceRecord& rr) {
  if (rr.rdata_length != kIpv6Size || !rdataValid(m, rr)) return std::nullopt;
  return IpAddress::v6(rdata(m, rr).data());
}

std::optional<MxData> decodeMx(const Message& m, const ResourceRecord& rr) {
  if (!rdataValid(m, rr) || rr.rdata_length < kMxFixedSize + 1) return std::nullopt;
  MxData mx;
  mx.preference = get16(m.bytes, rr.rdata_offset);
  size_t at = rr.rdata_offset + kMxFixedSize;
  size_t end = rr.rdata_offset + rr.rdata_length;
  auto name = nameIn(m, &at, end);
  if (!name || at != end) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::optional<std::string> decodeCname(const Message& m, const ResourceRecord& rr) {
  if (!rdataValid(m, rr) || rr.rdata_length == 0) return std::nullopt;
  size_t at = rr.rdata_offset;
  size_t end = at + rr.rdata_length;
  auto name = nameIn(m, &at, end);
  if (!name || at != end) return std::nullopt;
  return name;
}

std::optional<std::string> decodePtr(const Message& m, const ResourceRecord& rr) { return decodeCname(m, rr); }

std::optional<std::vector<std::string>> decodeTxtStrings(const Message& m, const ResourceRecord& rr) {
  if (!rdataValid(m, rr) || rr.rdata_length == 0) return std::nullopt;   // at least one string
  std::span<const uint8_t> d = rdata(m, rr);
  std::vector<std::string> out;
  size_t at = 0;
  while (at < d.size()) {
    size_t len = d[at];
    if (d.size() - at - 1 < len) return std::nullopt;
    out.emplace_back(reinterpret_cast<const char*>(d.data() + at + 1), len);
    at += 1 + len;
  }
  return out;
}

std::optional<std::string> decodeTxt(const Message& m, const ResourceRecord& rr) {
  auto strings = decodeTxtStrings(m, rr);
  if (!strings) return std::nullopt;
  std::string out;
  for (const auto& s : *strings) out += s;
  return out;
}

std::optional<SoaData> decodeSoa(const Message& m, const ResourceRecord& rr) {
  if (!rdataValid(m, rr) || rr.rdata_length == 0) return std::nullopt;
  SoaData soa;
  size_t at = rr.rdata_offset;
  size_t end = at + rr.rdata_length;
  auto mname = nameIn(m, &at, end);
  if (!mname) return std::nullopt;
  auto rname = nameIn(m, &at, end);
  if (!rname || end - at != kSoaTimersSize) return std::nullopt;
  soa.mname = std::move(*mname);
  soa.rname = std::move(*rname);
  soa.serial = get32(m.bytes, at);
  soa.refresh = get32(m.bytes, at + 4);
  soa.retry = get32(m.bytes, at + 8);
  soa.expire = get32(m.bytes, at + 12);
  soa.minimum = get32(m.bytes, at + 16);
  return soa;
}

std::optional<TlsaData> decodeTlsa(const Message& m, const ResourceRecord& rr) {
  if (!rdataValid(m, rr) || rr.rdata_length < kTlsaFixedSize) return std::nullopt;
  std::span<const uint8_t> d = rdata(m, rr);
  TlsaData t;
  t.usage = d[0];
  t.selector = d[1];
  t.matching_type = d[2];
  t.data.assign(d.begin() + kTlsaFixedSize, d.end());
  return t;
}

std::optional<std::string> normalizeName(std::string_view name) {
  if (name == ".") return std::string(".");
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxNameTextLength) return std::nullopt;
  std::string out;
  out.reserve(name.size());
  size_t label = 0;
  for (char ch : name) {
    auto c = static_cast<uint8_t>(ch);
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
      out += '.';
      continue;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
    if (!plainLabelByte(c)) return std::nullopt;
    if (++label > kMaxLabelLength) return std::nullopt;
    out += static_cast<char>(c);
  }
  if (label == 0) return std::nullopt;
  return out;
}

}  // namespace postern::dns
