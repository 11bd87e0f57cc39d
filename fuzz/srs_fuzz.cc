// libFuzzer target for the SRS reverse path (delivery/srs.h): parseSrsLocal over the local
// part and Srs::reverse over the whole address, as RCPT TO hands them in from anyone.
// Seeds: fuzz/corpus/srs/.
//
// Besides crashes and sanitizer reports, it checks:
// - parse: every view of an accepted SRS0 has the documented shape (hash kSrsHashLength
//   long, a decodable timestamp, non-empty domain and local part) and lies inside the input;
// - reverse: an accepted address is not longer than kSrsMaxAddressLength and decodes to
//   local@domain; a failure always carries a reason;
// - round trip: an address forward() makes from the input (taken as a sender) reverses to
//   that sender on the same day, or forward() declined it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "delivery/srs.h"

namespace {

using namespace postern::delivery;

constexpr uint64_t kDay = 20000;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

const Srs& srs() {
  static const Srs s("fuzz-secret-0123456789abcdef", "srs.example", kSrsDefaultMaxAgeDays);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t at = in.rfind('@');
  std::string_view local = at == std::string_view::npos ? in : in.substr(0, at);

  SrsParse p = parseSrsLocal(local);
  if (p.value) {
    const SrsLocal& v = *p.value;
    check(inside(v.hash, local) && v.hash.size() == kSrsHashLength);
    if (v.kind == SrsLocal::Kind::kSrs0) {
      check(inside(v.timestamp, local) && decodeSrsTimestamp(v.timestamp).has_value());
      check(inside(v.domain, local) && !v.domain.empty());
      check(inside(v.local, local) && !v.local.empty());
    } else {
      check(inside(v.forwarder, local) && !v.forwarder.empty());
      check(inside(v.srs0_rest, local) && !v.srs0_rest.empty());
    }
  } else {
    check(!p.reason.empty());
  }

  Srs::ReverseResult r = srs().reverse(in, kDay);
  if (r.value) {
    check(in.size() <= kSrsMaxAddressLength);
    check(r.value->address.find('@') != std::string::npos);
  } else {
    check(!r.reason.empty());
  }

  if (auto f = srs().forward(in, kDay)) {
    check(f->size() <= kSrsMaxAddressLength);
    Srs::ReverseResult back = srs().reverse(*f, kDay);
    check(back.value.has_value());
    if (back.value->kind == SrsLocal::Kind::kSrs0) check(back.value->address == in);
  }
  return 0;
}
