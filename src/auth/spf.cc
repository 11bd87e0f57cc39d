// check_host() of RFC 7208 (§4) over auth::Dns: record lookup and selection (§4.4, §4.5),
// mechanism evaluation (§4.6, §5), redirect and exp (§6), and the limits of §4.6.4.
// The record syntax and macro expansion are in spf_record.cc.
#include "auth/spf.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "util/strings.h"

namespace postern::auth {
namespace {

enum class Match : uint8_t { kNo, kYes, kTempError, kPermError };

struct MatchResult {
  Match match = Match::kNo;
  std::string problem;
};

// One check_host() evaluation: the state shared by the record and everything it includes
// or redirects to (the §4.6.4 counters are per evaluation, not per record).
struct Eval {
  Dns& dns;
  SpfRequest req;                 // sender completed, ip unmapped
  size_t terms = 0;               // include a mx ptr exists redirect evaluated so far
  size_t voids = 0;               // lookups that came back NXDOMAIN or empty
  bool ptr_done = false;          // validated PTR names computed (§5.5), once per evaluation
  std::vector<std::string> validated;
};

// What evaluating one domain's record came to.
struct Step {
  SpfResult result = SpfResult::kNone;
  std::string mechanism;
  std::string explanation;
  std::string problem;
};

Step error(SpfResult r, std::string problem, std::string mechanism = {}) {
  Step s;
  s.result = r;
  s.problem = std::move(problem);
  s.mechanism = std::move(mechanism);
  return s;
}

std::string stripDot(std::string s) {
  if (s.size() > 1 && s.back() == '.') s.pop_back();
  return s;
}

SpfResult qualifierResult(SpfQualifier q) {
  switch (q) {
    case SpfQualifier::kPass: return SpfResult::kPass;
    case SpfQualifier::kFail: return SpfResult::kFail;
    case SpfQualifier::kSoftFail: return SpfResult::kSoftFail;
    case SpfQualifier::kNeutral: return SpfResult::kNeutral;
  }
  return SpfResult::kNeutral;
}

bool isVoid(dns::Outcome o) {
  return o == dns::Outcome::kNxDomain || o == dns::Outcome::kNoData || o == dns::Outcome::kPermFail;
}

// §4.6.4: a term that causes DNS queries; the 11th is a permerror.
bool countTerm(Eval& e) { return ++e.terms <= kSpfMaxDnsTerms; }

// §4.6.4: the third void lookup is a permerror.
bool countVoid(Eval& e) { return ++e.voids <= kSpfMaxVoidLookups; }

MatchResult perm(std::string p) { return {Match::kPermError, std::move(p)}; }
MatchResult temp(std::string p) { return {Match::kTempError, std::move(p)}; }

bool inNetwork(const IpAddress& client, const IpAddress& net, unsigned bits) {
  return client.isV4() == net.isV4() && client.masked(bits) == net.masked(bits);
}

// A or AAAA, whichever is the client's family (§5.3, §5.4, §5.5).
net::awaitable<dns::AddressAnswer> lookupFamily(Eval& e, const std::string& host) {
  if (e.req.ip.isV4()) co_return co_await e.dns.a(host);
  co_return co_await e.dns.aaaa(host);
}

// §5.5: the client's PTR names (the first kSpfMaxNamesPerLookup) whose own addresses include
// the client. DNS errors only drop names. Shared by the ptr mechanism and %{p}.
net::awaitable<void> validatePtr(Eval& e) {
  if (e.ptr_done) co_return;
  e.ptr_done = true;
  dns::NameAnswer names = co_await e.dns.ptr(e.req.ip);
  if (names.outcome != dns::Outcome::kOk) {
    if (isVoid(names.outcome)) ++e.voids;   // judged by the ptr mechanism's caller
    co_return;
  }
  size_t n = std::min(names.names.size(), kSpfMaxNamesPerLookup);
  for (size_t k = 0; k < n; ++k) {
    std::string name = stripDot(names.names[k]);
    dns::AddressAnswer a = co_await lookupFamily(e, name);
    if (a.outcome != dns::Outcome::kOk) continue;
    if (std::find(a.addresses.begin(), a.addresses.end(), e.req.ip) != a.addresses.end()) e.validated.push_back(name);
  }
}

bool sameOrSubdomain(std::string_view name, std::string_view domain) {
  if (iequals(name, domain)) return true;
  return name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
         iequals(name.substr(name.size() - domain.size()), domain);
}

// §7.3 %{p}: a validated name that is `domain` or under it, else any validated name.
std::string ptrForMacro(const Eval& e, std::string_view domain) {
  for (const std::string& n : e.validated)
    if (sameOrSubdomain(n, domain)) return n;
  return e.validated.empty() ? std::string() : e.validated.front();
}

net::awaitable<Result<std::string>> expand(Eval& e, const std::string& spec, const std::string& domain, bool exp) {
  std::string ptr;
  if (spfMacrosNeedPtr(spec)) {
    co_await validatePtr(e);
    ptr = ptrForMacro(e, domain);
  }
  co_return expandSpfMacros(spec, e.req, domain, exp, ptr);
}

// The target of a/mx/ptr: the expanded domain-spec, or the current domain.
net::awaitable<Result<std::string>> target(Eval& e, const SpfTerm& t, const std::string& domain) {
  if (t.domain_spec.empty()) co_return domain;
  co_return co_await expand(e, t.domain_spec, domain, false);
}

// Looks up the client's family for a or mx; §5.3: "a" matches on the IP version of the client.
net::awaitable<MatchResult> matchAddresses(Eval& e, const std::string& host, const SpfTerm& t) {
  dns::AddressAnswer a = co_await lookupFamily(e, host);
  if (a.outcome == dns::Outcome::kTempFail) co_return temp(fmt::format("DNS error for {}: {}", host, a.error));
  if (a.outcome != dns::Outcome::kOk) {
    if (!countVoid(e)) co_return perm(fmt::format("more than {} void lookups (at {})", kSpfMaxVoidLookups, host));
    co_return MatchResult{};
  }
  for (const IpAddress& ip : a.addresses)
    if (inNetwork(e.req.ip, ip, e.req.ip.isV4() ? t.cidr4 : t.cidr6)) co_return MatchResult{Match::kYes, {}};
  co_return MatchResult{};
}

net::awaitable<Step> evaluate(Eval& e, std::string domain, bool want_exp);

net::awaitable<MatchResult> matchTerm(Eval& e, const SpfTerm& t, const std::string& domain) {
  const IpAddress& ip = e.req.ip;
  switch (t.kind) {
    case SpfTerm::Kind::kAll: co_return MatchResult{Match::kYes, {}};
    case SpfTerm::Kind::kIp4:
    case SpfTerm::Kind::kIp6: {
      // §5.6: ip4 never matches an IPv6 client nor ip6 an IPv4 one (mapped clients are IPv4).
      bool hit = t.ip && inNetwork(ip, *t.ip, t.kind == SpfTerm::Kind::kIp4 ? t.cidr4 : t.cidr6);
      co_return MatchResult{hit ? Match::kYes : Match::kNo, {}};
    }
    default: break;
  }
  if (!countTerm(e)) co_return perm(fmt::format("more than {} DNS-querying terms", kSpfMaxDnsTerms));
  Result<std::string> name = co_await target(e, t, domain);
  if (!name) co_return perm(fmt::format("macro expansion of '{}': {}", t.text, name.status().message()));
  std::string host = stripDot(*name);

  switch (t.kind) {
    case SpfTerm::Kind::kInclude: {
      // §5.2: the included record's result decides whether "include" matches.
      Step r = co_await evaluate(e, host, false);
      switch (r.result) {
        case SpfResult::kPass: co_return MatchResult{Match::kYes, {}};
        case SpfResult::kFail:
        case SpfResult::kSoftFail:
        case SpfResult::kNeutral: co_return MatchResult{};
        case SpfResult::kTempError: co_return temp(r.problem);
        case SpfResult::kPermError: co_return perm(r.problem);
        case SpfResult::kNone: co_return perm(fmt::format("included domain {} has no SPF record", host));
      }
      co_return MatchResult{};
    }
    case SpfTerm::Kind::kA: co_return co_await matchAddresses(e, host, t);
    case SpfTerm::Kind::kMx: {
      // §5.4: the MX hosts' addresses, of the client's family; more than 10 MX names is a permerror.
      dns::MxAnswer mx = co_await e.dns.mx(host);
      if (mx.outcome == dns::Outcome::kTempFail) co_return temp(fmt::format("DNS error for MX {}: {}", host, mx.error));
      if (mx.outcome != dns::Outcome::kOk || mx.null_mx) {
        if (mx.outcome != dns::Outcome::kOk && !countVoid(e))
          co_return perm(fmt::format("more than {} void lookups (at MX {})", kSpfMaxVoidLookups, host));
        co_return MatchResult{};
      }
      if (mx.hosts.size() > kSpfMaxNamesPerLookup)
        co_return perm(fmt::format("{} has more than {} MX records", host, kSpfMaxNamesPerLookup));
      std::vector<dns::MxHost> hosts = mx.hosts;
      std::sort(hosts.begin(), hosts.end(), [](const dns::MxHost& x, const dns::MxHost& y) {
        return std::tie(x.preference, x.host) < std::tie(y.preference, y.host);
      });
      bool hit = false;
      for (const dns::MxHost& h : hosts) {
        MatchResult m = co_await matchAddresses(e, stripDot(h.host), t);
        if (m.match == Match::kTempError || m.match == Match::kPermError) co_return m;
        if (m.match == Match::kYes) hit = true;
      }
      co_return MatchResult{hit ? Match::kYes : Match::kNo, {}};
    }
    case SpfTerm::Kind::kPtr: {
      // §5.5: a validated PTR name equal to or under the target.
      size_t voids = e.voids;
      co_await validatePtr(e);
      if (e.voids > kSpfMaxVoidLookups && voids <= kSpfMaxVoidLookups)
        co_return perm(fmt::format("more than {} void lookups (at PTR)", kSpfMaxVoidLookups));
      for (const std::string& n : e.validated)
        if (sameOrSubdomain(n, host)) co_return MatchResult{Match::kYes, {}};
      co_return MatchResult{};
    }
    case SpfTerm::Kind::kExists: {
      // §5.7: any A record, whatever the client's family.
      dns::AddressAnswer a = co_await e.dns.a(host);
      if (a.outcome == dns::Outcome::kTempFail) co_return temp(fmt::format("DNS error for {}: {}", host, a.error));
      if (a.outcome != dns::Outcome::kOk) {
        if (!countVoid(e)) co_return perm(fmt::format("more than {} void lookups (at {})", kSpfMaxVoidLookups, host));
        co_return MatchResult{};
      }
      co_return MatchResult{Match::kYes, {}};
    }
    default: break;
  }
  co_return MatchResult{};
}

// §6.2: the explanation of a fail. Any failure on the way means "no explanation".
net::awaitable<std::string> explain(Eval& e, const SpfTerm& exp, const std::string& domain) {
  Result<std::string> name = co_await expand(e, exp.domain_spec, domain, false);
  if (!name || name->empty()) co_return std::string();
  std::string host = stripDot(*name);
  dns::TxtAnswer txt = co_await e.dns.txt(host);
  if (txt.outcome != dns::Outcome::kOk || txt.records.size() != 1) co_return std::string();
  Result<std::string> text = co_await expand(e, txt.records.front(), domain, true);
  if (!text) co_return std::string();
  co_return std::move(*text);
}

// check_host() for one domain (§4): the whole of it for the top level and for redirect
// targets, and for include targets whose result "include" then maps (§5.2).
net::awaitable<Step> evaluate(Eval& e, std::string domain, bool want_exp) {
  // §4.3: a malformed or single-label domain has no SPF policy.
  if (!isValidSpfDomain(domain)) co_return error(SpfResult::kNone, fmt::format("invalid domain '{}'", domain));
  domain = stripDot(std::move(domain));

  // §4.4, §4.5: exactly one "v=spf1" TXT record.
  dns::TxtAnswer txt = co_await e.dns.txt(domain);
  if (txt.outcome == dns::Outcome::kTempFail)
    co_return error(SpfResult::kTempError, fmt::format("DNS error for TXT {}: {}", domain, txt.error));
  const std::string* record = nullptr;
  size_t found = 0;
  for (const std::string& r : txt.records) {
    if (!isSpfRecord(r)) continue;
    ++found;
    record = &r;
  }
  if (found == 0) co_return error(SpfResult::kNone, fmt::format("no SPF record at {}", domain));
  if (found > 1) co_return error(SpfResult::kPermError, fmt::format("{} SPF records at {}", found, domain));
  if (record->size() > kSpfMaxRecordBytes)
    co_return error(SpfResult::kPermError, fmt::format("SPF record of {} longer than {} bytes", domain, kSpfMaxRecordBytes));
  Result<SpfRecord> rec = parseSpfRecord(*record);
  if (!rec) co_return error(SpfResult::kPermError, fmt::format("{}: {}", domain, rec.status().message()));

  const SpfTerm* redirect = nullptr;
  const SpfTerm* exp = nullptr;
  bool has_all = false;
  for (const SpfTerm& t : rec->terms) {
    if (t.kind == SpfTerm::Kind::kRedirect) redirect = &t;
    if (t.kind == SpfTerm::Kind::kExp) exp = &t;
    if (t.kind == SpfTerm::Kind::kAll) has_all = true;
  }

  // §4.6.2: mechanisms left to right; the first match decides.
  for (const SpfTerm& t : rec->terms) {
    if (t.kind == SpfTerm::Kind::kRedirect || t.kind == SpfTerm::Kind::kExp ||
        t.kind == SpfTerm::Kind::kUnknownModifier)
      continue;
    MatchResult m = co_await matchTerm(e, t, domain);
    if (m.match == Match::kTempError) co_return error(SpfResult::kTempError, std::move(m.problem), t.text);
    if (m.match == Match::kPermError) co_return error(SpfResult::kPermError, std::move(m.problem), t.text);
    if (m.match == Match::kNo) continue;
    Step s;
    s.result = qualifierResult(t.qualifier);
    s.mechanism = t.text;
    if (s.result == SpfResult::kFail && want_exp && exp) s.explanation = co_await explain(e, *exp, domain);
    co_return s;
  }

  // §6.1: redirect when nothing matched (and never beside "all"); its target's result is ours,
  // except that "none" there is a permerror here. Its exp replaces ours (§6.2).
  if (redirect && !has_all) {
    if (!countTerm(e))
      co_return error(SpfResult::kPermError, fmt::format("more than {} DNS-querying terms", kSpfMaxDnsTerms),
                      redirect->text);
    Result<std::string> name = co_await expand(e, redirect->domain_spec, domain, false);
    if (!name)
      co_return error(SpfResult::kPermError, fmt::format("macro expansion of '{}': {}", redirect->text,
                                                         name.status().message()), redirect->text);
    std::string target_name = *name;
    Step r = co_await evaluate(e, target_name, want_exp);
    if (r.result == SpfResult::kNone)
      co_return error(SpfResult::kPermError, fmt::format("redirect target {} has no SPF record", target_name),
                      redirect->text);
    co_return r;
  }

  // §4.7: no match and no redirect: neutral.
  Step s;
  s.result = SpfResult::kNeutral;
  s.mechanism = "default";
  co_return s;
}

}  // namespace

net::awaitable<SpfOutcome> checkHost(Dns& dns, SpfRequest req, std::string domain) {
  // §4.3: an empty MAIL FROM is checked as postmaster@<helo>; a missing local-part is
  // "postmaster" (done where %{l} is expanded).
  if (req.sender.empty()) req.sender = "postmaster@" + req.helo;
  // IPv4-mapped IPv6 clients are IPv4 clients (§5: ip4, a, mx and %{i}/%{v} see them as such).
  req.ip = req.ip.unmapped();
  Eval e{dns, std::move(req)};
  SpfOutcome out;
  out.domain = domain;
  Step s = co_await evaluate(e, std::move(domain), true);
  out.result = s.result;
  out.mechanism = std::move(s.mechanism);
  out.explanation = std::move(s.explanation);
  if (s.result == SpfResult::kTempError || s.result == SpfResult::kPermError) out.problem = std::move(s.problem);
  out.dns_lookups = e.terms;
  co_return out;
}

}  // namespace postern::auth
