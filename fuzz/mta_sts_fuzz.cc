// libFuzzer target for the MTA-STS parsers (delivery/mta_sts_policy.h; RFC 8461 §3.1 TXT
// record, §3.2 policy file, §3.3 HTTP response, §4.1 MX patterns). Seeds: fuzz/corpus/mta_sts/.
//
// Every input goes through every parser. Besides crashes and sanitizer reports, it checks:
// - TXT: an accepted record is a candidate and its id is 1-32 letters and digits; selecting
//   among the input alone agrees with parsing it;
// - policy: an accepted policy has max_age <= kStsMaxAge, mx patterns when the mode needs
//   them, every pattern normalized, and written back out in canonical form it parses the same;
//   each pattern matches a host built for it, case and trailing dot aside;
// - HTTP: a done response has a body within kStsMaxPolicyBytes; a prefix that is already done
//   gives the same status and body as the whole input (more bytes never change the answer);
// - matching: the input split at its first newline into pattern and host never crashes,
//   and upper case or a trailing dot on the host does not change the answer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "delivery/mta_sts_policy.h"
#include "util/strings.h"

namespace {

using namespace postern;
using namespace postern::delivery;

void check(bool ok) {
  if (!ok) std::abort();
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

void txtRecord(std::string_view in) {
  auto id = parseStsRecord(in);
  StsRecord sel = selectStsRecord({std::string(in)});
  if (id) {
    check(isStsRecordCandidate(in));
    check(!id->empty() && id->size() <= kStsMaxIdLength);
    for (char c : *id) check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    check(sel.kind == StsRecord::Kind::kValid && sel.id == *id);
  } else {
    check(sel.kind != StsRecord::Kind::kValid);
  }
}

void policy(std::string_view in) {
  auto p = parseStsPolicy(in);
  if (!p) return;
  check(p->max_age <= kStsMaxAge);
  check(p->mode == StsMode::kNone || !p->mx.empty());
  check(p->mx.size() <= kStsMaxMxPatterns);
  std::string canonical = std::string("version: STSv1\r\nmode: ") + stsModeName(p->mode) + "\r\n";
  for (const auto& mx : p->mx) {
    const bool wildcard = mx.starts_with("*.");
    const std::string host = wildcard ? mx.substr(2) : mx;
    check(normalizeDomain(host) == host);
    const std::string example = wildcard ? "x." + host : host;
    check(stsMxMatches(mx, example) && stsMxMatches(mx, upper(example) + "."));
    if (wildcard) check(!stsMxMatches(mx, host));
    canonical += "mx: " + mx + "\r\n";
  }
  canonical += "max_age: " + std::to_string(p->max_age) + "\r\n";
  auto again = parseStsPolicy(canonical);
  check(again && again->mode == p->mode && again->mx == p->mx && again->max_age == p->max_age);
}

void http(std::string_view in) {
  for (bool eof : {false, true}) {
    StsHttpParse whole = parseStsHttpResponse(in, eof);
    if (whole.state == StsHttpParse::State::kDone) {
      check(whole.response.body.size() <= kStsMaxPolicyBytes);
      check(whole.response.status >= 200 && whole.response.status <= 999);
      (void)checkStsHttpResponse(whole.response);
    }
    if (whole.state == StsHttpParse::State::kError) check(!whole.error.empty());
  }
  StsHttpParse whole = parseStsHttpResponse(in, false);
  for (size_t n = 0; n < in.size(); n += 1 + n / 8) {
    StsHttpParse part = parseStsHttpResponse(in.substr(0, n), false);
    if (part.state != StsHttpParse::State::kDone) continue;
    check(whole.state == StsHttpParse::State::kDone);
    check(whole.response.status == part.response.status && whole.response.body == part.response.body);
  }
}

void matching(std::string_view in) {
  const size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view pattern = in.substr(0, nl), host = in.substr(nl + 1);
  const bool m = stsMxMatches(pattern, host);
  if (!host.empty() && host.back() != '.') check(stsMxMatches(pattern, std::string(host) + ".") == m);
  check(stsMxMatches(pattern, upper(host)) == m);
  (void)normalizeDomain(host);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  txtRecord(in);
  policy(in);
  http(in);
  matching(in);
  return 0;
}
