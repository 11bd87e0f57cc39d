// Fuzz target: spool recovery's record scanner and payload decoders on arbitrary bytes
// (a damaged segment must be detected, never crash or over-read), for both formats.
#include <cassert>
#include <cstdint>
#include <string_view>
#include <vector>

#include "spool/record.h"

using namespace postern::spool;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int version = (data[0] & 1) ? 1 : 2;
  constexpr uint32_t kNonce = 0x5eed5eed;
  std::string_view buf(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t pos = 0;
  while (pos < buf.size()) {
    ScannedRecord r = scanRecord(buf.substr(pos), version, kNonce);
    if (r.status != ScanStatus::kRecord) {
      if (version == 2) {
        size_t next = findNextRecord(buf, pos + 1, kNonce);
        assert(next == std::string_view::npos || (next > pos && next < buf.size()));
        if (next == std::string_view::npos) break;
        pos = next;
        continue;
      }
      break;
    }
    assert(r.consumed >= r.header_size && r.consumed <= buf.size() - pos);
    std::string_view qid, d;
    size_t off;
    Envelope env;
    std::vector<uint32_t> rcpts;
    std::vector<StateChange> changes;
    switch (r.type) {
      case RecordType::kChunk:
        if (decodeChunk(r.payload, qid, d, off)) assert(off + d.size() == r.payload.size());
        break;
      case RecordType::kMessage:
        if (decodeMessage(r.payload, version, env, d, off)) {
          assert(off + d.size() == r.payload.size());
          // What decodes must encode back to the same record.
          std::string again = version == 2 ? encodeMessage(kNonce, env, d) : encodeMessageV1(env, d);
          assert(again == std::string(buf.substr(pos, r.consumed)));
        }
        break;
      case RecordType::kDone: (void)decodeDone(r.payload, qid, rcpts); break;
      case RecordType::kAbort: (void)decodeAbort(r.payload, qid); break;
      case RecordType::kState:
        if (decodeState(r.payload, qid, changes)) {
          std::string again;
          encodeState(again, kNonce, qid, changes);
          assert(again == std::string(buf.substr(pos, r.consumed)));
        }
        break;
    }
    pos += r.consumed;
  }
  (void)scanSegmentHeader(buf);
  return 0;
}
