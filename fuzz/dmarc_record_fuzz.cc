// libFuzzer target for the DMARC record parser (auth/dmarc_record.h: parseDmarcRecord,
// isDmarcRecord) and the search for our own Authentication-Results fields (auth/results_fields.h:
// ownResultsFields), both fed with what DNS and senders hand in. Seeds: fuzz/corpus/dmarc_record/.
//
// Besides crashes and sanitizer reports, it checks:
// - an accepted record started with v=DMARC1 (isDmarcRecord agrees), fits kDmarcMaxRecordBytes,
//   has pct 0..100 and at most kDmarcMaxUris URIs per list, none empty; a rejected one says why;
// - the fields found are in order, do not overlap, lie in the input, each begins with an
//   Authentication-Results name and ends at a line end (or the end of the input), and all lie
//   before the header's end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <string_view>

#include "auth/dmarc_record.h"
#include "auth/results_fields.h"
#include "util/strings.h"

namespace {

using namespace postern;
using namespace postern::auth;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto rec = parseDmarcRecord(in);
  if (rec) {
    check(in.size() <= kDmarcMaxRecordBytes);
    check(isDmarcRecord(in));
    check(rec->pct <= 100);
    check(rec->rua.size() <= kDmarcMaxUris && rec->ruf.size() <= kDmarcMaxUris);
    for (const auto& u : rec->rua) check(!u.empty());
    for (const auto& u : rec->ruf) check(!u.empty());
    check(rec->p <= DmarcPolicy::kReject && (!rec->sp || *rec->sp <= DmarcPolicy::kReject));
  } else {
    check(!rec.status().message().empty());
  }

  // The first line (up to 64 octets) as the authserv-id too, so ids with odd octets get tried.
  std::string_view first = in.substr(0, std::min<size_t>(in.find('\n'), 64));
  for (std::string_view id : {std::string_view("mx.test"), first}) {
    auto found = ownResultsFields(in, id);
    size_t last_end = 0;
    size_t header_end = in.find("\n\r\n");
    size_t header_end_lf = in.find("\n\n");
    size_t limit = std::min(header_end == std::string_view::npos ? in.size() : header_end + 1,
                            header_end_lf == std::string_view::npos ? in.size() : header_end_lf + 1);
    for (auto [b, e] : found) {
      check(b >= last_end && b < e && e <= in.size());
      check(e <= limit);
      check(istartsWith(in.substr(b), "authentication-results"));
      check(e == in.size() || in[e - 1] == '\n');
      check(b == 0 || in[b - 1] == '\n');
      last_end = e;
    }
  }
  return 0;
}
