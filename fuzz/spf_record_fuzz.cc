// libFuzzer target for the SPF record parser and macro expansion (auth/spf_record.h): TXT
// records and the domain-specs and explanations in them come from anyone's DNS.
// Seeds: fuzz/corpus/spf_record/.
//
// Besides crashes and sanitizer reports, it checks:
// - parse: an accepted record has at most kSpfMaxTerms terms, each term's text is a piece of
//   the input, prefix lengths are in range, ip4/ip6 terms carry an address of their family,
//   and redirect/exp appear at most once; a rejected record always carries a reason;
// - expansion: every domain-spec of an accepted record expands (it passed the syntax check)
//   to a name of at most kSpfMaxDomainLength octets, for an IPv4 and an IPv6 client; the input
//   expanded as an explanation either fails with a reason or succeeds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/spf_record.h"

namespace {

using namespace postern;
using namespace postern::auth;

void check(bool ok) {
  if (!ok) std::abort();
}

SpfRequest request(const char* ip) {
  SpfRequest r;
  r.ip = *IpAddress::parse(ip);
  r.sender = "strong-bad@email.example.com";
  r.helo = "mx.example.org";
  r.receiver = "mx.example.net";
  r.now = 1234567890;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const SpfRequest v4 = request("192.0.2.3");
  static const SpfRequest v6 = request("2001:db8::cb01");

  Result<SpfRecord> r = parseSpfRecord(in);
  if (r) {
    check(r->terms.size() <= kSpfMaxTerms);
    int redirects = 0, exps = 0;
    for (const SpfTerm& t : r->terms) {
      check(!t.text.empty() && in.find(t.text) != std::string_view::npos);
      check(t.cidr4 <= 32 && t.cidr6 <= 128);
      if (t.kind == SpfTerm::Kind::kIp4) check(t.ip && t.ip->isV4());
      if (t.kind == SpfTerm::Kind::kIp6) check(t.ip && !t.ip->isV4());
      if (t.kind == SpfTerm::Kind::kRedirect) ++redirects;
      if (t.kind == SpfTerm::Kind::kExp) ++exps;
      if (t.domain_spec.empty()) continue;
      for (const SpfRequest* req : {&v4, &v6}) {
        Result<std::string> e = expandSpfMacros(t.domain_spec, *req, "email.example.com", false, "mx.example.com");
        check(e.isOk());
        check(e->size() <= kSpfMaxDomainLength);
      }
    }
    check(redirects <= 1 && exps <= 1);
  } else {
    check(!r.status().message().empty());
  }

  Result<std::string> x = expandSpfMacros(in, v6, "email.example.com", true);
  if (!x) check(!x.status().message().empty());
  (void)isValidSpfDomain(in);
  return 0;
}
