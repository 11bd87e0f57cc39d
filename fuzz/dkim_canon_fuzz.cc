// libFuzzer target for DKIM message preparation (RFC 6376 §3.4 canonicalization, §5.4
// header selection, §3.7 header hash input; dkim/canon.h): the header/body split, both
// canonicalizations, and the From: domain. Invariants are checked with __builtin_trap so a
// broken one is reported as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dkim/canon.h"

namespace {

using namespace postern::dkim;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parts = splitMessage(in);
  if (parts) {
    const MessageParts& m = parts.value();
    check(m.fields.size() <= kMaxHeaderFields);
    for (const auto& f : m.fields) {
      check(f.raw.data() >= in.data() && f.raw.data() + f.raw.size() <= in.data() + in.size());
      check(!f.name.empty() && f.raw.substr(0, f.name.size()) == f.name);
      std::string relaxed = canonicalHeader(f, Canon::kRelaxed);
      // One line: the only CRLF is the last; no WSP before it; the name is lower case.
      check(relaxed.size() >= 3 && relaxed.substr(relaxed.size() - 2) == "\r\n");
      std::string_view line(relaxed.data(), relaxed.size() - 2);
      check(line.find("\r\n") == std::string_view::npos);
      check(line.back() != ' ' && line.back() != '\t');
      for (char c : line.substr(0, line.find(':'))) check(!(c >= 'A' && c <= 'Z'));
      check(canonicalHeader(f, Canon::kSimple) == std::string(f.raw) + "\r\n");
    }
    std::vector<std::string> h = chooseSignedHeaders(m);
    (void)headerHashInput(m, h, Canon::kRelaxed);
    if (auto d = fromDomain(m)) check(!d->empty() && d->find('@') == std::string::npos);
  }
  // The body canonicalizers: streaming in two pieces gives what one piece gives, and the
  // result is empty or ends in CRLF.
  for (Canon c : {Canon::kSimple, Canon::kRelaxed}) {
    std::string whole = canonicalBody(in, c);
    check(whole.empty() ? c == Canon::kRelaxed : whole.substr(whole.size() - 2) == "\r\n");
    check(whole.size() < 4 || whole.substr(whole.size() - 4) != "\r\n\r\n" || whole == "\r\n");
    std::string split;
    BodyCanonicalizer b(c, [&](std::string_view s) { split.append(s); });
    size_t cut = size ? data[0] % (size + 1) : 0;
    b.feed(in.substr(0, cut));
    b.feed(in.substr(cut));
    b.finish();
    check(split == whole);
  }
  return 0;
}
