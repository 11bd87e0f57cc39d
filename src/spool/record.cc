#include "spool/record.h"

#include <cstring>

#include "util/crc32c.h"

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

struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;
  uint32_t u32() {
    if (in.size() - pos < 4) {
      ok = false;
      return 0;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(in.data() + pos);
    pos += 4;
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
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

// Writes the 9-byte header for a payload of `len` whose CRC (over type+payload) is `crc`.
void putHeader(std::string& out, RecordType type, uint32_t len, uint32_t crc) {
  putU32(out, len);
  putU32(out, crc);
  out.push_back(static_cast<char>(type));
}

uint32_t crcStart(RecordType type) {
  uint8_t t = static_cast<uint8_t>(type);
  return crc32c(0, &t, 1);
}

void encodeSmall(std::string& out, RecordType type, const std::string& payload) {
  uint32_t crc = crc32c(crcStart(type), payload.data(), payload.size());
  putHeader(out, type, static_cast<uint32_t>(payload.size()), crc);
  out += payload;
}

std::string messagePayloadPrefix(const Envelope& env) {
  std::string p;
  putStr(p, env.queue_id);
  putU64(p, env.accepted_us);
  putU32(p, env.pid);
  putU64(p, env.seq);
  putU64(p, env.size);
  putStr(p, env.mail_from);
  putU32(p, static_cast<uint32_t>(env.recipients.size()));
  for (const auto& r : env.recipients) {
    putStr(p, r.address);
    putStr(p, r.mailbox);
    p.push_back(r.local ? 1 : 0);
  }
  putU32(p, 0);  // tail length placeholder, patched by the caller
  return p;
}

}  // namespace

void encodeChunkHeader(std::string& out, std::string_view queue_id, std::string_view data) {
  std::string prefix;
  putStr(prefix, queue_id);
  uint32_t crc = crc32c(crcStart(RecordType::kChunk), prefix.data(), prefix.size());
  crc = crc32c(crc, data.data(), data.size());
  putHeader(out, RecordType::kChunk, static_cast<uint32_t>(prefix.size() + data.size()), crc);
  out += prefix;
}

std::string encodeChunk(std::string_view queue_id, std::string_view data) {
  std::string out;
  encodeChunkHeader(out, queue_id, data);
  out.append(data);
  return out;
}

void encodeMessageHeader(std::string& out, const Envelope& env, std::string_view tail) {
  std::string prefix = messagePayloadPrefix(env);
  uint32_t tl = static_cast<uint32_t>(tail.size());
  std::memcpy(prefix.data() + prefix.size() - 4, &tl, 4);  // little-endian host
  uint32_t crc = crc32c(crcStart(RecordType::kMessage), prefix.data(), prefix.size());
  crc = crc32c(crc, tail.data(), tail.size());
  putHeader(out, RecordType::kMessage, static_cast<uint32_t>(prefix.size() + tail.size()), crc);
  out += prefix;
}

std::string encodeMessage(const Envelope& env, std::string_view tail) {
  std::string out;
  encodeMessageHeader(out, env, tail);
  out.append(tail);
  return out;
}

void encodeDone(std::string& out, std::string_view queue_id, std::span<const uint32_t> recipients) {
  std::string p;
  putStr(p, queue_id);
  putU32(p, static_cast<uint32_t>(recipients.size()));
  for (uint32_t r : recipients) putU32(p, r);
  encodeSmall(out, RecordType::kDone, p);
}

void encodeAbort(std::string& out, std::string_view queue_id) {
  std::string p;
  putStr(p, queue_id);
  encodeSmall(out, RecordType::kAbort, p);
}

ScannedRecord scanRecord(std::string_view buf) {
  ScannedRecord r{ScanStatus::kTruncated, RecordType::kChunk, {}, 0};
  if (buf.size() < kRecordHeaderSize) return r;
  Reader rd{buf};
  uint32_t len = rd.u32();
  uint32_t crc = rd.u32();
  uint8_t type = rd.u8();
  if (type < 1 || type > 4 || len > kMaxRecordPayload) {
    r.status = ScanStatus::kCorrupt;
    return r;
  }
  if (buf.size() - kRecordHeaderSize < len) return r;  // truncated
  std::string_view payload = buf.substr(kRecordHeaderSize, len);
  uint32_t actual = crc32c(crc32c(0, &type, 1), payload.data(), payload.size());
  if (actual != crc) {
    r.status = ScanStatus::kCorrupt;
    return r;
  }
  r.status = ScanStatus::kRecord;
  r.type = static_cast<RecordType>(type);
  r.payload = payload;
  r.consumed = kRecordHeaderSize + len;
  return r;
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

bool decodeMessage(std::string_view payload, Envelope& env, std::string_view& tail, size_t& tail_offset_in_payload) {
  Reader rd{payload};
  env.queue_id = std::string(rd.str());
  env.accepted_us = rd.u64();
  env.pid = rd.u32();
  env.seq = rd.u64();
  env.size = rd.u64();
  env.mail_from = std::string(rd.str());
  uint32_t n = rd.u32();
  if (!rd.ok || n > payload.size()) return false;
  env.recipients.clear();
  for (uint32_t i = 0; i < n && rd.ok; ++i) {
    Recipient r;
    r.address = std::string(rd.str());
    r.mailbox = std::string(rd.str());
    r.local = rd.u8() != 0;
    env.recipients.push_back(std::move(r));
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

}  // namespace postern::spool
