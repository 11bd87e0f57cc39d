// DMARC evaluation, RFC 7489: organizational domains (§3.2) from the Public Suffix List via
// libpsl, policy discovery (§6.6.3), identifier alignment (§3.1) and the policy to apply
// (§6.6.4, pct= of §6.3). The record parser is in dmarc_record.cc.
//
// Not done: special treatment of a From domain that does not exist in DNS (NXDOMAIN for A,
// AAAA and MX); such mail gets the DMARC result its records give (usually none), and a
// receiver may refuse it on other grounds.
#include <libpsl.h>

#include <string>
#include <utility>
#include <vector>

#include "auth/dmarc.h"
#include "util/strings.h"

namespace postern::auth {
namespace {

// The list is loaded once, on first use (a function-local static: thread-safe initialization),
// and only read afterwards (libpsl lookups on a loaded psl_ctx_t are read-only).
// psl_latest(NULL) takes the newer of the compiled-in list and the distribution's data
// (Debian: /usr/share/publicsuffix); psl_builtin() when that fails.
const psl_ctx_t* publicSuffixList() {
  static const psl_ctx_t* psl = [] {
    const psl_ctx_t* p = psl_latest(nullptr);
    return p ? p : psl_builtin();
  }();
  return psl;
}

std::string normalizeDomain(std::string_view d) {
  std::string s = toLower(d);
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// §3.1.1 / §3.1.2: strict means the same name; relaxed, the same organizational domain.
bool aligned(std::string_view identifier, const std::string& from, const std::string& from_org, bool strict) {
  std::string id = normalizeDomain(identifier);
  if (id.empty()) return false;
  if (strict) return id == from;
  return organizationalDomain(id) == from_org;
}

// §6.6.4 with pct= (§6.3): a message outside the sampled percentage gets the next less
// strict policy.
DmarcPolicy stepDown(DmarcPolicy p) {
  return p == DmarcPolicy::kReject ? DmarcPolicy::kQuarantine : DmarcPolicy::kNone;
}

enum class Lookup : uint8_t { kNone, kOne, kMany, kTempFail };

struct Found {
  Lookup outcome = Lookup::kNone;
  std::string record;
  std::string error;
};

// TXT at _dmarc.<domain>, keeping only records that start with v=DMARC1 (§6.6.3 steps 1-2).
net::awaitable<Found> lookupRecord(Dns& dns, const std::string& domain) {
  Found f;
  std::string name = "_dmarc." + domain;
  dns::TxtAnswer answer = co_await dns.txt(name);
  if (answer.outcome == dns::Outcome::kTempFail) {
    f.outcome = Lookup::kTempFail;
    f.error = answer.error.empty() ? "DNS error" : answer.error;
    co_return f;
  }
  // NXDOMAIN, NODATA and a name the resolver refuses outright: no record.
  if (answer.outcome != dns::Outcome::kOk) co_return f;
  size_t count = 0;
  for (std::string& r : answer.records) {
    if (!isDmarcRecord(r)) continue;
    if (++count == 1) f.record = std::move(r);
  }
  f.outcome = count == 0 ? Lookup::kNone : count == 1 ? Lookup::kOne : Lookup::kMany;
  co_return f;
}

}  // namespace

std::string organizationalDomain(std::string_view domain) {
  std::string d = normalizeDomain(domain);
  if (d.empty()) return d;
  const char* reg = psl_registrable_domain(publicSuffixList(), d.c_str());
  return reg ? std::string(reg) : d;
}

net::awaitable<DmarcVerdict> checkDmarc(Dns& dns, DmarcInput in) {
  DmarcVerdict v;
  v.header_from = normalizeDomain(in.header_from);
  if (v.header_from.empty()) {
    v.reason = "From domain missing";
    co_return v;
  }
  const std::string from_org = organizationalDomain(v.header_from);

  // §6.6.3: the From domain first, then (when that has no DMARC record) the organizational domain.
  Found f = co_await lookupRecord(dns, v.header_from);
  bool from_org_record = false;
  if (f.outcome == Lookup::kNone && from_org != v.header_from) {
    f = co_await lookupRecord(dns, from_org);
    from_org_record = true;
  }
  switch (f.outcome) {
    case Lookup::kTempFail:
      // The handling of DNS errors is the receiver's choice (§6.6.3); RFC 8601 §2.7.1 temperror.
      v.result = DmarcResult::kTempError;
      v.reason = "DNS: " + f.error;
      co_return v;
    case Lookup::kNone:
      v.reason = "no record";
      co_return v;
    case Lookup::kMany:
      // §6.6.3 step 5: more than one record: DMARC does not apply.
      v.reason = "multiple records";
      co_return v;
    case Lookup::kOne:
      break;
  }
  Result<DmarcRecord> rec = parseDmarcRecord(f.record);
  if (!rec) {
    // §6.6.3 step 6 and RFC 7489 §11.2: a syntactically incorrect record is a permerror.
    v.result = DmarcResult::kPermError;
    v.reason = "record: " + rec.status().message();
    co_return v;
  }

  // sp= applies to subdomains, i.e. when the record is the organizational domain's (§6.3).
  v.policy = from_org_record && rec->sp ? *rec->sp : rec->p;

  // §4.2: pass when SPF or DKIM passes with an aligned identifier (§3.1).
  v.spf_aligned = in.spf == SpfResult::kPass && aligned(in.spf_domain, v.header_from, from_org, rec->aspf_strict);
  for (const DkimVerdict& d : in.dkim)
    if (d.result == DkimResult::kPass && aligned(d.domain, v.header_from, from_org, rec->adkim_strict))
      v.dkim_aligned = true;
  if (v.spf_aligned || v.dkim_aligned) {
    v.result = DmarcResult::kPass;
    co_return v;
  }
  v.result = DmarcResult::kFail;
  v.disposition = v.policy;
  v.reason = "no aligned SPF or DKIM pass";
  if (rec->pct < 100 && in.pct_roll % 100 >= rec->pct && v.disposition != DmarcPolicy::kNone) {
    v.disposition = stepDown(v.disposition);
    v.reason += "; outside pct=" + std::to_string(rec->pct);
  }
  co_return v;
}

}  // namespace postern::auth
