// libFuzzer target for the milter reply parser (milter/protocol.h): parseReply over bytes
// a filter sends back, applied repeatedly as the client does on its read buffer.
// Seeds: fuzz/corpus/milter_reply/.
//
// Besides crashes and sanitizer reports, it checks:
// - kDone consumes at least the 5-byte packet head and never more than the input, and
//   never a packet over kMaxPacket;
// - kNeedMore consumes nothing and only happens on a prefix shorter than the packet;
// - kError always carries a reason;
// - the parser is a pure function: the same bytes give the same result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "milter/protocol.h"

namespace {

using namespace postern::milter;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  for (int packets = 0; packets < 64; ++packets) {
    ParseResult r = parseReply(in);
    ParseResult again = parseReply(in);
    check(r.state == again.state && r.consumed == again.consumed && r.error == again.error);
    if (r.state == ParseResult::State::kError) {
      check(!r.error.empty());
      break;
    }
    if (r.state == ParseResult::State::kNeedMore) {
      check(r.consumed == 0);
      if (in.size() >= 4) {
        uint32_t len = (uint32_t(in[0]) << 24) | (uint32_t(in[1]) << 16) | (uint32_t(in[2]) << 8) | in[3];
        check(in.size() - 4 < len);
      }
      break;
    }
    check(r.consumed >= 5 && r.consumed <= in.size() && r.consumed - 4 <= kMaxPacket);
    if (r.reply.kind == Reply::Kind::kReplyCode) check(r.reply.text.size() >= 3);
    in = in.subspan(r.consumed);
  }
  return 0;
}
