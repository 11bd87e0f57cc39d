// libFuzzer target for DATA / BDAT text framing: RFC 5321 §4.1.1.4, §4.5.2, §2.3.8 and
// RFC 3030 §2. Input layout: byte 0 = options (bit 0: give a size limit, bits 1-2: line
// limit choice), bytes 1-2 = split point, the rest = the text after DATA. Invariants:
//   - consumed <= size; when done, the consumed bytes end with a real <CRLF>.<CRLF> (or are
//     exactly ".<CRLF>");
//   - the output never holds a bare LF or bare CR, in either mode (unless cut by the size
//     limit);
//   - output size <= consumed input + bare newline count;
//   - both modes produce identical output; bareNewline() only in kReject mode;
//   - one feed, two feeds split anywhere, and byte-by-byte feeding agree exactly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/proto/data_scanner.h"

namespace {

using namespace postern::smtp;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  std::string out;
  size_t consumed = 0;
  bool done = false;
  size_t bare_count = 0;
  bool bare = false;
  bool too_long = false;
  bool nul = false;
  bool over = false;
  uint64_t message_size = 0;

  bool operator==(const Outcome& o) const {
    return out == o.out && consumed == o.consumed && done == o.done && bare_count == o.bare_count && bare == o.bare &&
           too_long == o.too_long && nul == o.nul && over == o.over && message_size == o.message_size;
  }
};

template <class Splitter>
Outcome runData(std::string_view in, BareNewlines mode, size_t max_line, uint64_t limit, Splitter next_piece) {
  DataScanner s(mode, max_line);
  s.setSizeLimit(limit);
  Outcome o;
  size_t pos = 0;
  while (pos < in.size()) {
    std::string_view piece = next_piece(in, pos);
    auto r = s.feed(piece, o.out);
    check(r.consumed <= piece.size());
    o.consumed += r.consumed;
    if (r.done) {
      o.done = true;
      break;
    }
    check(r.consumed == piece.size());
    pos += piece.size();
  }
  o.bare_count = s.bareNewlineCount();
  o.bare = s.bareNewline();
  o.too_long = s.lineTooLong();
  o.nul = s.sawNul();
  o.over = s.overLimit();
  o.message_size = s.messageSize();
  check(s.bytesOut() == o.out.size());
  check(s.bytesOut() <= limit);
  check(s.done() == o.done);
  return o;
}

// Every CR is followed by LF and every LF preceded by CR.
bool onlyCrlf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t opts = data[0];
  const size_t split_at = static_cast<size_t>(data[1]) << 8 | data[2];
  std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);
  const uint64_t limit = (opts & 1) ? in.size() / 2 : UINT64_MAX;
  const size_t line_limits[] = {kMaxTextLine, 8, 0, 3};
  const size_t max_line = line_limits[(opts >> 1) & 3];
  const size_t split = split_at % (in.size() + 1);

  auto whole = [](std::string_view s, size_t pos) { return s.substr(pos); };
  auto two = [split](std::string_view s, size_t pos) {
    return pos < split ? s.substr(pos, split - pos) : s.substr(pos);
  };
  auto bytes = [](std::string_view s, size_t pos) { return s.substr(pos, 1); };

  Outcome reject = runData(in, BareNewlines::kReject, max_line, limit, whole);
  Outcome normal = runData(in, BareNewlines::kNormalize, max_line, limit, whole);

  for (const Outcome* o : {&reject, &normal}) {
    check(o->consumed <= in.size());
    if (!o->over) {
      check(onlyCrlf(o->out));
      check(o->message_size == o->out.size());
    }
    check(o->message_size <= o->consumed + o->bare_count);
    if (o->done) {
      std::string_view used = in.substr(0, o->consumed);
      check(used.size() >= 3 && used.substr(used.size() - 3) == ".\r\n");
      check(used.size() == 3 || used.substr(used.size() - 5, 2) == "\r\n");
    } else {
      check(o->consumed == in.size());
    }
  }
  // Same output both modes; the mode only decides the reject flag.
  check(reject.out == normal.out && reject.consumed == normal.consumed && reject.done == normal.done);
  check(reject.bare_count == normal.bare_count);
  check(reject.bare == (reject.bare_count > 0));
  check(!normal.bare);

  check(runData(in, BareNewlines::kReject, max_line, limit, two) == reject);
  if (in.size() <= 4096) check(runData(in, BareNewlines::kNormalize, max_line, limit, bytes) == normal);

  // BDAT: the same bytes as two chunks, then LAST.
  for (BareNewlines mode : {BareNewlines::kReject, BareNewlines::kNormalize}) {
    TextChecker a(mode, max_line);
    TextChecker b(mode, max_line);
    std::string out_a, out_b;
    a.feed(in, out_a);
    a.finish(out_a);
    b.feed(in.substr(0, split), out_b);
    b.feed(in.substr(split), out_b);
    b.finish(out_b);
    check(out_a == out_b);
    check(a.bareNewlineCount() == b.bareNewlineCount() && a.lineTooLong() == b.lineTooLong());
    check(a.sawNul() == b.sawNul());
    check(onlyCrlf(out_a));
    check(out_a.size() == in.size() + a.bareNewlineCount());
    check(a.bareNewline() == (mode == BareNewlines::kReject && a.bareNewlineCount() > 0));
  }
  return 0;
}
