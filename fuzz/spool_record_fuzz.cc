// Fuzz target: spool recovery's record scanner and payload decoders on arbitrary bytes
// (a damaged segment must be detected, never crash or over-read).
#include <cassert>
#include <cstdint>
#include <string_view>
#include <vector>

#include "spool/record.h"

using namespace postern::spool;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos < buf.size()) {
    ScannedRecord r = scanRecord(buf.substr(pos));
    if (r.status != ScanStatus::kRecord) break;
    assert(r.consumed >= kRecordHeaderSize && r.consumed <= buf.size() - pos);
    std::string_view qid, d;
    size_t off;
    Envelope env;
    std::vector<uint32_t> rcpts;
    switch (r.type) {
      case RecordType::kChunk:
        if (decodeChunk(r.payload, qid, d, off)) assert(off + d.size() == r.payload.size());
        break;
      case RecordType::kMessage:
        if (decodeMessage(r.payload, env, d, off)) {
          assert(off + d.size() == r.payload.size());
          // What decodes must encode back to the same record.
          assert(encodeMessage(env, d) == std::string(buf.substr(pos, r.consumed)));
        }
        break;
      case RecordType::kDone: (void)decodeDone(r.payload, qid, rcpts); break;
      case RecordType::kAbort: (void)decodeAbort(r.payload, qid); break;
    }
    pos += r.consumed;
  }
  return 0;
}
