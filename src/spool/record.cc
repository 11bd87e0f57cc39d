#include "spool/record.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "util/crc32c.h"
#include "util/time_text.h"

namespace postern::spool {
namespace {

void putU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out.append(b, 4);
}
void putU64(std::string& out, uint64_t v) {
  putU32(out, static_cast<uint32_t>(v));
  putU32(out, static_cast<uint32_t>(v >> 32));
}
void putStr(std::string& out, std::string_view s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
// kRecordMarker as it appears in the file (little-endian).
constexpr char kMarkerBytes[4] = {'\xF5', '\x0A', '\x5A', '\xC3'};

uint32_t getU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
}

struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;
  uint32_t u32() {
    if (in.size() - pos < 4) {
      ok = false;
      return 0;
    }
    uint32_t v = getU32(in.data() + pos);
    pos += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t lo = u32();
    uint64_t hi = u32();
    return lo | hi << 32;
  }
  uint8_t u8() {
    if (pos >= in.size()) {
      ok = false;
      return 0;
    }
    return static_cast<uint8_t>(in[pos++]);
  }
  std::string_view str() {
    uint32_t n = u32();
    if (!ok || in.size() - pos < n) {
      ok = false;
      return {};
    }
    std::string_view s = in.substr(pos, n);
    pos += n;
    return s;
  }
};

bool validType(uint8_t t, int version) {
  if (version == 1) return t >= 1 && t <= 4;
  return t == 1 || t == 2 || t == 4 || t == 5;
}

// CRC of a format-2 record up to (not including) the payload.
uint32_t crcStartV2(uint32_t nonce, uint32_t len, RecordType type) {
  unsigned char pre[9];
  for (int i = 0; i < 4; ++i) {
    pre[i] = static_cast<unsigned char>(nonce >> (8 * i));
    pre[4 + i] = static_cast<unsigned char>(len >> (8 * i));
  }
  pre[8] = static_cast<unsigned char>(type);
  return crc32c(0, pre, sizeof pre);
}

// Header of a format-2 record whose payload is `prefix` followed by `data`.
void putRecordV2(std::string& out, uint32_t nonce, RecordType type, std::string_view prefix, std::string_view data) {
  uint32_t len = static_cast<uint32_t>(prefix.size() + data.size());
  uint32_t crc = crc32c(crcStartV2(nonce, len, type), prefix.data(), prefix.size());
  crc = crc32c(crc, data.data(), data.size());
  putU32(out, kRecordMarker);
  putU32(out, len);
  putU32(out, crc);
  out.push_back(static_cast<char>(type));
  out.append(prefix);
}

void putRecordV1(std::string& out, RecordType type, std::string_view prefix, std::string_view data) {
  uint8_t t = static_cast<uint8_t>(type);
  uint32_t crc = crc32c(crc32c(crc32c(0, &t, 1), prefix.data(), prefix.size()), data.data(), data.size());
  putU32(out, static_cast<uint32_t>(prefix.size() + data.size()));
  putU32(out, crc);
  out.push_back(static_cast<char>(type));
  out.append(prefix);
}

bool hasDsnFields(const Envelope& env) {
  if (env.ret != DsnRet::kUnset || !env.envid.empty()) return true;
  for (const auto& r : env.recipients)
    if (r.notify != 0 || !r.orcpt.empty()) return true;
  return false;
}

std::string messagePrefix(const Envelope& env, std::string_view tail, int version) {
  std::string p;
  putStr(p, env.queue_id);
  putU64(p, env.accepted_us);
  putU32(p, env.pid);
  putU64(p, env.seq);
  putU64(p, env.size);
  putStr(p, env.mail_from);
  bool dsn = version >= 2 && hasDsnFields(env);
  if (version >= 2) putU32(p, (env.flags & ~kDsnFields) | (dsn ? kDsnFields : 0));
  putU32(p, static_cast<uint32_t>(env.recipients.size()));
  for (const auto& r : env.recipients) {
    putStr(p, r.address);
    putStr(p, r.mailbox);
    p.push_back(r.local ? 1 : 0);
  }
  if (dsn) {
    std::string ext;
    ext.push_back(static_cast<char>(env.ret));
    putStr(ext, env.envid);
    for (const auto& r : env.recipients) {
      ext.push_back(static_cast<char>(r.notify));
      putStr(ext, r.orcpt);
    }
    putStr(p, ext);
  }
  putU32(p, static_cast<uint32_t>(tail.size()));
  return p;
}

std::string chunkPrefix(std::string_view queue_id) {
  std::string p;
  putStr(p, queue_id);
  return p;
}

}  // namespace

Envelope newEnvelope(uint64_t seq) {
  Envelope env;
  env.accepted_us = nowUnixUs();
  env.pid = static_cast<uint32_t>(::getpid());
  env.seq = seq;
  env.queue_id = fmt::format("{:08X}{:05X}{:X}", env.accepted_us / 1'000'000 & 0xffffffffu, env.accepted_us % 1'000'000,
                             env.seq);
  return env;
}

bool finished(RcptStatus s) { return s != RcptStatus::kPending; }

std::string encodeSegmentHeader(uint32_t nonce) {
  std::string h(kSegmentMagicV2, sizeof kSegmentMagicV2);
  putU32(h, nonce);
  putU32(h, crc32c(0, h.data(), h.size()));
  return h;
}

void encodeChunkHeader(std::string& out, uint32_t nonce, std::string_view queue_id, std::string_view data) {
  putRecordV2(out, nonce, RecordType::kChunk, chunkPrefix(queue_id), data);
}

void encodeMessageHeader(std::string& out, uint32_t nonce, const Envelope& env, std::string_view tail) {
  putRecordV2(out, nonce, RecordType::kMessage, messagePrefix(env, tail, 2), tail);
}

void encodeAbort(std::string& out, uint32_t nonce, std::string_view queue_id) {
  putRecordV2(out, nonce, RecordType::kAbort, chunkPrefix(queue_id), {});
}

void encodeState(std::string& out, uint32_t nonce, std::string_view queue_id, std::span<const StateChange> changes) {
  std::string p;
  putStr(p, queue_id);
  putU32(p, static_cast<uint32_t>(changes.size()));
  for (const auto& c : changes) {
    putU32(p, c.index);
    p.push_back(static_cast<char>(static_cast<uint8_t>(c.state.status) | (c.state.warned ? kStateWarned : 0)));
    putU32(p, c.state.attempts);
    putU64(p, c.state.next_attempt_us);
    putStr(p, c.state.last_error);
  }
  putRecordV2(out, nonce, RecordType::kState, p, {});
}

std::string encodeChunk(uint32_t nonce, std::string_view queue_id, std::string_view data) {
  std::string out;
  encodeChunkHeader(out, nonce, queue_id, data);
  out.append(data);
  return out;
}

std::string encodeMessage(uint32_t nonce, const Envelope& env, std::string_view tail) {
  std::string out;
  encodeMessageHeader(out, nonce, env, tail);
  out.append(tail);
  return out;
}

std::string encodeMessageV1(const Envelope& env, std::string_view tail) {
  std::string out;
  putRecordV1(out, RecordType::kMessage, messagePrefix(env, tail, 1), tail);
  out.append(tail);
  return out;
}

std::string encodeChunkV1(std::string_view queue_id, std::string_view data) {
  std::string out;
  putRecordV1(out, RecordType::kChunk, chunkPrefix(queue_id), data);
  out.append(data);
  return out;
}

std::string encodeDoneV1(std::string_view queue_id, std::span<const uint32_t> recipients) {
  std::string p;
  putStr(p, queue_id);
  putU32(p, static_cast<uint32_t>(recipients.size()));
  for (uint32_t r : recipients) putU32(p, r);
  std::string out;
  putRecordV1(out, RecordType::kDone, p, {});
  return out;
}

SegmentHeader scanSegmentHeader(std::string_view buf) {
  SegmentHeader h;
  size_t n = std::min(buf.size(), sizeof kSegmentMagicV2);
  bool v1 = std::memcmp(buf.data(), kSegmentMagicV1, n) == 0;
  bool v2 = std::memcmp(buf.data(), kSegmentMagicV2, n) == 0;
  if (!v1 && !v2) return h;
  if (buf.size() < sizeof kSegmentMagicV2) {
    h.status = SegmentHeader::kShort;
    return h;
  }
  if (v1) {
    h.status = SegmentHeader::kOk;
    h.version = 1;
    h.size = kSegmentHeaderSizeV1;
    return h;
  }
  if (buf.size() < kSegmentHeaderSizeV2) {
    h.status = SegmentHeader::kShort;
    return h;
  }
  if (crc32c(0, buf.data(), 12) != getU32(buf.data() + 12)) return h;
  h.status = SegmentHeader::kOk;
  h.version = 2;
  h.nonce = getU32(buf.data() + 8);
  h.size = kSegmentHeaderSizeV2;
  return h;
}

ScannedRecord scanRecord(std::string_view buf, int version, uint32_t nonce) {
  ScannedRecord r{ScanStatus::kTruncated, RecordType::kChunk, {}, 0, 0};
  size_t hs = version == 1 ? kRecordHeaderSizeV1 : kRecordHeaderSizeV2;
  if (buf.size() < hs) {
    // A short header is a torn write only if what is there could start one.
    if (version == 2 && std::memcmp(buf.data(), kMarkerBytes, std::min<size_t>(buf.size(), 4)) != 0)
      r.status = ScanStatus::kCorrupt;
    return r;
  }
  const char* p = buf.data();
  uint32_t len, crc;
  uint8_t type;
  if (version == 1) {
    len = getU32(p);
    crc = getU32(p + 4);
    type = static_cast<uint8_t>(p[8]);
  } else {
    if (getU32(p) != kRecordMarker) {
      r.status = ScanStatus::kCorrupt;
      return r;
    }
    len = getU32(p + 4);
    crc = getU32(p + 8);
    type = static_cast<uint8_t>(p[12]);
  }
  if (!validType(type, version) || len > kMaxRecordPayload) {
    r.status = ScanStatus::kCorrupt;
    return r;
  }
  if (buf.size() - hs < len) return r;  // truncated
  std::string_view payload = buf.substr(hs, len);
  uint32_t actual = version == 1
                        ? crc32c(crc32c(0, &type, 1), payload.data(), payload.size())
                        : crc32c(crcStartV2(nonce, len, static_cast<RecordType>(type)), payload.data(), payload.size());
  if (actual != crc) {
    r.status = ScanStatus::kCorrupt;
    return r;
  }
  r.status = ScanStatus::kRecord;
  r.type = static_cast<RecordType>(type);
  r.payload = payload;
  r.header_size = hs;
  r.consumed = hs + len;
  return r;
}

size_t findNextRecord(std::string_view buf, size_t from, uint32_t nonce) {
  const std::string_view marker(kMarkerBytes, 4);
  while (from < buf.size()) {
    size_t at = buf.find(marker, from);
    if (at == std::string_view::npos) return std::string_view::npos;
    if (scanRecord(buf.substr(at), 2, nonce).status == ScanStatus::kRecord) return at;
    from = at + 1;
  }
  return std::string_view::npos;
}

bool decodeChunk(std::string_view payload, std::string_view& queue_id, std::string_view& data,
                 size_t& data_offset_in_payload) {
  Reader rd{payload};
  queue_id = rd.str();
  if (!rd.ok || queue_id.empty()) return false;
  data_offset_in_payload = rd.pos;
  data = payload.substr(rd.pos);
  return true;
}

bool decodeMessage(std::string_view payload, int version, Envelope& env, std::string_view& tail,
                   size_t& tail_offset_in_payload) {
  Reader rd{payload};
  env.queue_id = std::string(rd.str());
  env.accepted_us = rd.u64();
  env.pid = rd.u32();
  env.seq = rd.u64();
  env.size = rd.u64();
  env.mail_from = std::string(rd.str());
  env.flags = version >= 2 ? rd.u32() : 0;
  uint32_t n = rd.u32();
  if (!rd.ok || n > payload.size() || n > kMaxRecipients) return false;
  env.recipients.clear();
  for (uint32_t i = 0; i < n && rd.ok; ++i) {
    Recipient r;
    r.address = std::string(rd.str());
    r.mailbox = std::string(rd.str());
    r.local = rd.u8() != 0;
    env.recipients.push_back(std::move(r));
  }
  env.ret = DsnRet::kUnset;
  env.envid.clear();
  if (env.flags & kDsnFields) {
    env.flags &= ~kDsnFields;
    Reader ext{rd.str()};
    uint8_t ret = ext.u8();
    if (!rd.ok || !ext.ok || ret > static_cast<uint8_t>(DsnRet::kHdrs)) return false;
    env.ret = static_cast<DsnRet>(ret);
    env.envid = std::string(ext.str());
    for (auto& r : env.recipients) {
      r.notify = ext.u8();
      r.orcpt = std::string(ext.str());
    }
    // One encoding per envelope (the fuzz target re-encodes what decodes): the extension
    // holds exactly these fields, and only when one of them is set.
    if (!ext.ok || ext.pos != ext.in.size() || !hasDsnFields(env)) return false;
  }
  uint32_t tl = rd.u32();
  if (!rd.ok || payload.size() - rd.pos != tl || env.queue_id.empty()) return false;
  tail_offset_in_payload = rd.pos;
  tail = payload.substr(rd.pos);
  return true;
}

bool decodeDone(std::string_view payload, std::string_view& queue_id, std::vector<uint32_t>& recipients) {
  Reader rd{payload};
  queue_id = rd.str();
  uint32_t n = rd.u32();
  if (!rd.ok || n > payload.size()) return false;
  recipients.clear();
  for (uint32_t i = 0; i < n && rd.ok; ++i) recipients.push_back(rd.u32());
  return rd.ok && rd.pos == payload.size();
}

bool decodeAbort(std::string_view payload, std::string_view& queue_id) {
  Reader rd{payload};
  queue_id = rd.str();
  return rd.ok && rd.pos == payload.size() && !queue_id.empty();
}

bool decodeState(std::string_view payload, std::string_view& queue_id, std::vector<StateChange>& changes) {
  Reader rd{payload};
  queue_id = rd.str();
  uint32_t n = rd.u32();
  if (!rd.ok || queue_id.empty() || n > payload.size()) return false;
  changes.clear();
  for (uint32_t i = 0; i < n && rd.ok; ++i) {
    StateChange c;
    c.index = rd.u32();
    uint8_t st = rd.u8();
    c.state.warned = (st & kStateWarned) != 0;
    st &= static_cast<uint8_t>(~kStateWarned);
    if (st > kMaxRcptStatus) return false;
    c.state.status = static_cast<RcptStatus>(st);
    c.state.attempts = rd.u32();
    c.state.next_attempt_us = rd.u64();
    c.state.last_error = std::string(rd.str());
    changes.push_back(std::move(c));
  }
  return rd.ok && rd.pos == payload.size();
}

}  // namespace postern::spool
