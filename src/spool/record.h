// The spool's on-disk format, described once here.
//
// The spool is a sequence of segment files spool/seg-<16 hex digits>.log. Format 2 (written
// now) starts each segment with a 16-byte header
//
//   "PSTRNSP2" | u32 nonce | u32 CRC-32C of the 12 bytes before
//
// and then holds records:
//
//   u32 marker 0xC35A0AF5 | u32 payload length | u32 CRC | u8 type | payload
//
// all little-endian, where CRC is CRC-32C over (nonce, payload length, type, payload). The
// marker lets recovery find the next record after a damaged one (it scans forward for a
// marker whose record checks); the nonce, random per segment, makes a record that a
// client planted inside a message body fail its check, so the scan cannot be fooled.
//
// Format 1 (read only): header "PSTRNSP1"; records u32 length | u32 CRC-32C(type, payload)
// | u8 type | payload; no marker, so recovery stops at the first bad record.
//
// Record types:
//   kChunk   : queue id, body bytes             - a piece of a message still being received
//   kMessage : envelope, body tail               - the message is accepted (ack after fdatasync).
//              With kRelocated in its flags the tail is the whole body and replaces what
//              earlier segments held (compaction); a kState record with the recipients'
//              state follows it.
//              Envelope: str queue id | u64 accepted_us | u32 pid | u64 seq | u64 size |
//              str mail_from | u32 flags (format 2) | u32 n | n x (str address | str mailbox
//              | u8 local) | [extension] | u32 tail length | tail. The extension is there
//              only with kDsnFields in flags (records written before it never have it):
//              u32 length | that many bytes: u8 ret (DsnRet) | str envid | n x (u8 notify |
//              str orcpt), written only when one of them is set (each envelope has one
//              encoding). Later fields get a flag bit and a block of their own.
//   (str = u32 length | bytes)
//   kDone    : queue id, recipient indexes       - format 1: those recipients are finished
//   kAbort   : queue id                          - the transaction's chunks are garbage
//   kState   : queue id, (index, status, attempts, next attempt, last error)...
//              - format 2: the delivery state of some recipients; the last one wins.
//              str queue id | u32 n | n x (u32 index | u8 status | u32 attempts |
//              u64 next attempt | str last error). The status byte's bit 7 (kStateWarned)
//              is RcptState::warned; records written before it never set it.
//
// A message's body is its kChunk records in file order followed by the kMessage tail; its
// size is in the envelope, and recovery checks it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace postern::spool {

inline constexpr char kSegmentMagicV1[8] = {'P', 'S', 'T', 'R', 'N', 'S', 'P', '1'};
inline constexpr char kSegmentMagicV2[8] = {'P', 'S', 'T', 'R', 'N', 'S', 'P', '2'};
inline constexpr size_t kSegmentHeaderSizeV1 = 8;
inline constexpr size_t kSegmentHeaderSizeV2 = 16;
inline constexpr uint32_t kRecordMarker = 0xC35A0AF5;
inline constexpr size_t kRecordHeaderSizeV1 = 9;
inline constexpr size_t kRecordHeaderSizeV2 = 13;
inline constexpr uint32_t kMaxRecordPayload = 64u * 1024 * 1024;
inline constexpr uint32_t kMaxRecipients = 1u << 20;

enum class RecordType : uint8_t { kChunk = 1, kMessage = 2, kDone = 3, kAbort = 4, kState = 5 };

struct Recipient {
  std::string address;   // as the client wrote it in RCPT TO
  std::string mailbox;   // where it goes after alias expansion
  bool local = true;     // a mailbox here (Maildir) or a remote address (outbound)
  // RFC 3461 §4: NOTIFY (kNotify* bits; 0: not given, the default FAILURE,DELAY applies)
  // and ORCPT ("rfc822;user@example.org", empty: not given).
  uint8_t notify = 0;
  std::string orcpt;
};

inline constexpr uint8_t kNotifyNever = 1u << 0;
inline constexpr uint8_t kNotifySuccess = 1u << 1;
inline constexpr uint8_t kNotifyFailure = 1u << 2;
inline constexpr uint8_t kNotifyDelay = 1u << 3;

// RFC 3461 §4.3 RET.
enum class DsnRet : uint8_t { kUnset = 0, kFull = 1, kHdrs = 2 };

// Envelope flags (format 2).
inline constexpr uint32_t kRelocated = 1u << 0;   // the tail is the whole body (compaction)
inline constexpr uint32_t kBounce = 1u << 1;      // a delivery status notification we made
inline constexpr uint32_t kDsnFields = 1u << 2;   // the record has the DSN extension; only on the record
inline constexpr uint32_t kJunk = 1u << 3;        // local recipients get it in their Junk folder (spam verdict)

struct Envelope {
  std::string queue_id;
  uint64_t accepted_us = 0;   // microseconds since the epoch, at acceptance
  uint32_t pid = 0;           // accepting process
  uint64_t seq = 0;           // per-process counter; with the two above it names the Maildir file
  std::string mail_from;      // empty: null reverse-path
  std::vector<Recipient> recipients;
  uint64_t size = 0;          // body bytes (chunks + tail)
  uint32_t flags = 0;         // kBounce, kJunk; kRelocated and kDsnFields only on the record
  DsnRet ret = DsnRet::kUnset;   // RFC 3461 §4.3
  std::string envid;             // RFC 3461 §4.4 ENVID, decoded from xtext; empty: not given
};

// A new envelope named now: accepted_us, this process's pid, `seq` and the queue id
// derived from them (unique per process and per microsecond).
Envelope newEnvelope(uint64_t seq);

enum class RcptStatus : uint8_t {
  kPending = 0,     // still to be delivered (maybe after a deferral)
  kDelivered = 1,
  kFailed = 2,      // failed for good; the sender was notified (or it was a bounce)
  kDeleted = 3,     // removed by the operator (postern queue delete)
};
inline constexpr uint8_t kMaxRcptStatus = 3;
inline constexpr uint8_t kStateWarned = 0x80;   // in a kState record's status byte
bool finished(RcptStatus s);

struct RcptState {
  RcptStatus status = RcptStatus::kPending;
  uint32_t attempts = 0;
  uint64_t next_attempt_us = 0;   // 0: as soon as possible
  std::string last_error;
  bool warned = false;            // a delay warning (RFC 3464 action=delayed) was sent
  bool operator==(const RcptState&) const = default;
};

struct StateChange {
  uint32_t index;
  RcptState state;
};

// Encoders append one complete format-2 record (header included) to `out`. `nonce` is
// the segment's. The *Header forms write header and fixed fields only: the caller writes
// the data right after (large bodies are written without a copy).
void encodeChunkHeader(std::string& out, uint32_t nonce, std::string_view queue_id, std::string_view data);
void encodeMessageHeader(std::string& out, uint32_t nonce, const Envelope& env, std::string_view tail);
void encodeAbort(std::string& out, uint32_t nonce, std::string_view queue_id);
void encodeState(std::string& out, uint32_t nonce, std::string_view queue_id, std::span<const StateChange> changes);
std::string encodeSegmentHeader(uint32_t nonce);
// Full records in one buffer (tests, small messages).
std::string encodeChunk(uint32_t nonce, std::string_view queue_id, std::string_view data);
std::string encodeMessage(uint32_t nonce, const Envelope& env, std::string_view tail);
// Format 1, for tests of the old reader.
std::string encodeMessageV1(const Envelope& env, std::string_view tail);
std::string encodeChunkV1(std::string_view queue_id, std::string_view data);
std::string encodeDoneV1(std::string_view queue_id, std::span<const uint32_t> recipients);

// A segment's header. Looks only at bytes in [buf.data(), buf.data()+buf.size()).
struct SegmentHeader {
  enum Status : uint8_t { kOk, kShort, kBad } status = kBad;
  int version = 0;
  uint32_t nonce = 0;
  size_t size = 0;   // bytes of header
};
SegmentHeader scanSegmentHeader(std::string_view buf);

enum class ScanStatus : uint8_t { kRecord, kTruncated, kCorrupt };
struct ScannedRecord {
  ScanStatus status;
  RecordType type{};
  std::string_view payload;
  size_t header_size = 0;   // payload starts this far into the record
  size_t consumed = 0;
};
// One record at the start of `buf`, of a segment of `version` (1 or 2) with `nonce`.
// Looks only at bytes in [buf.data(), buf.data()+buf.size()).
ScannedRecord scanRecord(std::string_view buf, int version, uint32_t nonce);
// Format 2: the offset of the next record that checks, searching from `from`; npos if none.
size_t findNextRecord(std::string_view buf, size_t from, uint32_t nonce);

// Payload decoders. False on malformed payloads.
bool decodeChunk(std::string_view payload, std::string_view& queue_id, std::string_view& data,
                 size_t& data_offset_in_payload);
bool decodeMessage(std::string_view payload, int version, Envelope& env, std::string_view& tail,
                   size_t& tail_offset_in_payload);
bool decodeDone(std::string_view payload, std::string_view& queue_id, std::vector<uint32_t>& recipients);
bool decodeAbort(std::string_view payload, std::string_view& queue_id);
bool decodeState(std::string_view payload, std::string_view& queue_id, std::vector<StateChange>& changes);

}  // namespace postern::spool
