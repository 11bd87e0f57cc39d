// The spool's on-disk format, described once here.
//
// The spool is a sequence of segment files spool/seg-<16 hex digits>.log. Each starts
// with the 8-byte magic "PSTRNSP1" and then holds records:
//
//   u32 payload length (little-endian) | u32 CRC-32C of (type byte + payload) | u8 type | payload
//
// Record types:
//   kChunk   : queue id, body bytes      - a piece of a message still being received
//   kMessage : envelope, total size, body tail - the message is accepted (ack after fdatasync)
//   kDone    : queue id, recipient indexes    - those recipients are delivered (or failed for good)
//   kAbort   : queue id                       - the transaction's chunks are garbage
//
// A message's body is its kChunk records in file order followed by the kMessage tail.
// A record that fails its length or checksum at the end of the newest segment is a torn
// write (never acknowledged) and is cut off on recovery; anywhere else it is corruption.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace postern::spool {

inline constexpr char kSegmentMagic[8] = {'P', 'S', 'T', 'R', 'N', 'S', 'P', '1'};
inline constexpr size_t kRecordHeaderSize = 9;
inline constexpr uint32_t kMaxRecordPayload = 64u * 1024 * 1024;

enum class RecordType : uint8_t { kChunk = 1, kMessage = 2, kDone = 3, kAbort = 4 };

struct Recipient {
  std::string address;   // as the client wrote it in RCPT TO
  std::string mailbox;   // where it goes after alias expansion
  bool local = true;     // a mailbox here (Maildir) or a remote address (outbound, later)
};

struct Envelope {
  std::string queue_id;
  uint64_t accepted_us = 0;   // microseconds since the epoch, at acceptance
  uint32_t pid = 0;           // accepting process
  uint64_t seq = 0;           // per-process counter; with the two above it names the Maildir file
  std::string mail_from;      // empty: null reverse-path
  std::vector<Recipient> recipients;
  uint64_t size = 0;          // body bytes (chunks + tail)
};

// Encoders append one complete record (header included) to `out`.
// Header and fixed fields of a kChunk record for `data`; the caller writes `data` right after
// (so large bodies are written without a copy).
void encodeChunkHeader(std::string& out, std::string_view queue_id, std::string_view data);
// Same for kMessage: `tail` follows.
void encodeMessageHeader(std::string& out, const Envelope& env, std::string_view tail);
void encodeDone(std::string& out, std::string_view queue_id, std::span<const uint32_t> recipients);
void encodeAbort(std::string& out, std::string_view queue_id);
// Full records in one buffer (tests, small messages).
std::string encodeChunk(std::string_view queue_id, std::string_view data);
std::string encodeMessage(const Envelope& env, std::string_view tail);

enum class ScanStatus : uint8_t { kRecord, kTruncated, kCorrupt };
struct ScannedRecord {
  ScanStatus status;
  RecordType type{};
  std::string_view payload;
  size_t consumed = 0;
};
// Looks only at bytes in [buf.data(), buf.data()+buf.size()).
ScannedRecord scanRecord(std::string_view buf);

// Payload decoders. False on malformed payloads.
bool decodeChunk(std::string_view payload, std::string_view& queue_id, std::string_view& data,
                 size_t& data_offset_in_payload);
bool decodeMessage(std::string_view payload, Envelope& env, std::string_view& tail, size_t& tail_offset_in_payload);
bool decodeDone(std::string_view payload, std::string_view& queue_id, std::vector<uint32_t>& recipients);
bool decodeAbort(std::string_view payload, std::string_view& queue_id);

}  // namespace postern::spool
