// SPF (auth/spf.h, auth/spf_record.h): the record parser, macro expansion (RFC 7208 §7.4
// examples) and check_host() over auth::StaticDns. Many check_host cases follow the
// scenarios of the RFC 7208 test suite (rfc7208-tests.yml), named after them where they do.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "auth/spf.h"
#include "dns/resolver.h"
#include "run_sync.h"

namespace postern::auth {
namespace {

// ---------------------------------------------------------------------------------------
// Parser

struct ParseCase {
  const char* record;
  bool ok;
  const char* reason;   // a part of the error message, or of the test's intent when ok
};

TEST(SpfParse, Table) {
  const ParseCase cases[] = {
      {"v=spf1", true, "empty record"},
      {"v=spf1 -all", true, "all"},
      {"V=SPF1 -ALL", true, "version and names are case-insensitive"},
      {"v=spf1   -all   ", true, "several spaces between and after terms"},
      {"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx ptr exists:%{i}.x.example include:_spf.example.org ~all",
       true, "every mechanism"},
      {"v=spf1 a/24//64 mx:example.org/0 a:example.org//128", true, "dual cidr"},
      {"v=spf1 redirect=_spf.example.org exp=explain.example.org", true, "modifiers"},
      {"v=spf1 foo-bar=baz moo.cow-2=%{d} -all", true, "unknown modifiers are ignored"},
      {"v=spf1 a:foo:bar/baz.example.com", true, "':' and '/' are macro-literals (a-colon-domain)"},
      {"v=spf1 a:e-a.example.com-x", true, "toplabel with a dash"},
      {"v=spf1 a:example.com.", true, "trailing dot"},
      {"v=spf1 exists:%{ir}.%{v}._spf.%{d2}", true, "domain-end is a macro"},
      {"v=spf1 exists:foo%%", true, "domain-end is an escape"},
      {"v=spf1 default=-", true, "obsolete default= is an unknown modifier"},
      {"v=spf1mx", false, "not an SPF record"},
      {"v=spf1 -all.", false, "unknown mechanism 'all.'"},
      {"v=spf1 -all:foobar", false, "takes no argument"},
      {"v=spf1 -all/8", false, "takes no argument"},
      {"v=spf1 ptr/0 -all", false, "prefix length"},
      {"v=spf1 ptr:", false, "empty domain-spec"},
      {"v=spf1 a/33", false, "IPv4 prefix length"},
      {"v=spf1 a//129", false, "IPv6 prefix length"},
      {"v=spf1 a/024", false, "IPv4 prefix length"},
      {"v=spf1 a:", false, "empty domain-spec"},
      {"v=spf1 a:111.222.33.44", false, "top label"},
      {"v=spf1 a:abc.123", false, "top label"},
      {"v=spf1 a:museum", false, "top label"},
      {"v=spf1 a:museum.", false, "top label"},
      {"v=spf1 a:foo.example.com-", false, "top label"},
      {"v=spf1 a:foo.example.com/", false, "top label"},
      {"v=spf1 mx:", false, "empty domain-spec"},
      {"v=spf1 include:", false, "empty domain-spec"},
      {"v=spf1 include", false, "needs ':domain'"},
      {"v=spf1 include:e.example.com/24", false, "top label"},
      {"v=spf1 exists", false, "needs ':domain'"},
      {"v=spf1 exists:", false, "empty domain-spec"},
      {"v=spf1 exists:mail.example.com/24", false, "top label"},
      {"v=spf1 ip4", false, "needs ':address'"},
      {"v=spf1 ip4:1.2.3.4/33", false, "prefix length"},
      {"v=spf1 ip4:1.2.3.4/032", false, "prefix length"},
      {"v=spf1 ip4:1.2.3.4//0", false, "prefix length"},
      {"v=spf1 ip4:1.2.3.4:8080", false, "invalid IPv4 address"},
      {"v=spf1 ip4:1.2.3", false, "invalid IPv4 address"},
      {"v=spf1 ip4:::1", false, "invalid IPv4 address"},
      {"v=spf1 ip6", false, "needs ':address'"},
      {"v=spf1 ip6:::1/129", false, "prefix length"},
      {"v=spf1 ip6:1.2.3.4", false, "invalid IPv6 address"},
      {"v=spf1 foo", false, "unknown mechanism 'foo' at term 1"},
      {"v=spf1 -all foo:bar", false, "unknown mechanism 'foo' at term 2"},
      {"v=spf1 =all", false, "unknown mechanism"},
      {"v=spf1 -all 123=baz", false, "unknown mechanism"},
      {"v=spf1 redirect:example.com", false, "unknown mechanism 'redirect'"},
      {"v=spf1 redirect=a.example.com redirect=b.example.com", false, "second 'redirect' at term 2"},
      {"v=spf1 exp=a.example.com exp=b.example.com -all", false, "second 'exp' at term 2"},
      {"v=spf1 redirect=", false, "empty domain-spec"},
      {"v=spf1 exp=", false, "empty domain-spec"},
      {"v=spf1 exp=-all", false, "top label"},
      {"v=spf1 -all foo=%abc", false, "'%' followed by 'a'"},
      {"v=spf1 a:%{x}.example.com", false, "macro letter 'x'"},
      {"v=spf1 exp=%{r}.example.com -all", false, "macro letter 'r'"},
      {"v=spf1 a:%{d0}.example.com", false, "transformer count 0"},
      {"v=spf1 a:%{d.example.com", false, "unterminated macro"},
      {"v=spf1 a:%{d2r*}.example.com", false, "invalid character '*'"},
      {"v=spf1 a:%{}.example.com", false, "empty macro"},
      {"v=spf1 a:example.com%", false, "at the end"},
      {"v=spf1 a:exa\tmple.com", false, "invalid character 0x09"},
      {"v=spf1 a:ex\xc3\xa9mple.com", false, "invalid character 0xc3"},      // non-ascii-mech
      {"v=spf1 -all moo=\xc3\xa9", false, "invalid character 0xc3"},         // non-ascii-policy
      {"v=spf1 -all\x07", false, "unknown mechanism"},                         // control-char-policy
      {"v=spf1 \xc6\x92", false, "unknown mechanism"},
  };
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(c.record);
    auto r = parseSpfRecord(c.record);
    EXPECT_EQ(r.isOk(), c.ok) << (r ? std::string("parsed") : r.status().message());
    if (!c.ok && !r) {
      EXPECT_NE(r.status().message().find(c.reason), std::string::npos) << r.status().message();
    }
  }
}

TEST(SpfParse, TermsAndValues) {
  auto r = parseSpfRecord("v=spf1 ~a:mail.example.org/24//64 -ip4:192.0.2.0/25 ?ip6:2001:db8::/48 +mx "
                          "include:_spf.example.org foo=bar exp=x.%{d}");
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->terms.size(), 7u);
  const SpfTerm& a = r->terms[0];
  EXPECT_EQ(a.kind, SpfTerm::Kind::kA);
  EXPECT_EQ(a.qualifier, SpfQualifier::kSoftFail);
  EXPECT_EQ(a.domain_spec, "mail.example.org");
  EXPECT_EQ(a.cidr4, 24u);
  EXPECT_EQ(a.cidr6, 64u);
  EXPECT_EQ(a.text, "~a:mail.example.org/24//64");
  EXPECT_EQ(r->terms[1].kind, SpfTerm::Kind::kIp4);
  EXPECT_EQ(r->terms[1].qualifier, SpfQualifier::kFail);
  EXPECT_EQ(r->terms[1].ip, IpAddress::parse("192.0.2.0"));
  EXPECT_EQ(r->terms[1].cidr4, 25u);
  EXPECT_EQ(r->terms[2].kind, SpfTerm::Kind::kIp6);
  EXPECT_EQ(r->terms[2].qualifier, SpfQualifier::kNeutral);
  EXPECT_EQ(r->terms[2].cidr6, 48u);
  EXPECT_EQ(r->terms[3].kind, SpfTerm::Kind::kMx);
  EXPECT_TRUE(r->terms[3].domain_spec.empty());
  EXPECT_EQ(r->terms[3].cidr4, 32u);
  EXPECT_EQ(r->terms[4].kind, SpfTerm::Kind::kInclude);
  EXPECT_EQ(r->terms[4].domain_spec, "_spf.example.org");
  EXPECT_EQ(r->terms[5].kind, SpfTerm::Kind::kUnknownModifier);
  EXPECT_EQ(r->terms[5].name, "foo");
  EXPECT_EQ(r->terms[5].value, "bar");
  EXPECT_EQ(r->terms[6].kind, SpfTerm::Kind::kExp);
  EXPECT_EQ(r->terms[6].domain_spec, "x.%{d}");
}

TEST(SpfParse, ResultNames) {
  EXPECT_STREQ(spfResultName(SpfResult::kNone), "none");
  EXPECT_STREQ(spfResultName(SpfResult::kNeutral), "neutral");
  EXPECT_STREQ(spfResultName(SpfResult::kPass), "pass");
  EXPECT_STREQ(spfResultName(SpfResult::kFail), "fail");
  EXPECT_STREQ(spfResultName(SpfResult::kSoftFail), "softfail");
  EXPECT_STREQ(spfResultName(SpfResult::kTempError), "temperror");
  EXPECT_STREQ(spfResultName(SpfResult::kPermError), "permerror");
}

TEST(SpfParse, DomainValidity) {
  EXPECT_TRUE(isValidSpfDomain("example.com"));
  EXPECT_TRUE(isValidSpfDomain("example.com."));
  EXPECT_TRUE(isValidSpfDomain(std::string(63, 'a') + ".example.com"));
  EXPECT_FALSE(isValidSpfDomain(std::string(64, 'a') + ".example.com"));   // toolonglabel
  EXPECT_FALSE(isValidSpfDomain("foo..example.com"));                      // emptylabel
  EXPECT_FALSE(isValidSpfDomain("A2345678"));                              // helo-not-fqdn
  EXPECT_FALSE(isValidSpfDomain("[1.2.3.5]"));                             // helo-domain-literal
  EXPECT_FALSE(isValidSpfDomain("1.2.3.5"));
  EXPECT_FALSE(isValidSpfDomain(""));
  EXPECT_FALSE(isValidSpfDomain("."));
}

// ---------------------------------------------------------------------------------------
// Macro expansion: RFC 7208 §7.4, exactly.

SpfRequest exampleRequest(const char* ip) {
  SpfRequest r;
  r.ip = *IpAddress::parse(ip);
  r.sender = "strong-bad@email.example.com";
  r.helo = "mx.example.org";
  r.receiver = "mx.example.net";
  r.now = 1234567890;
  return r;
}

TEST(SpfMacro, Rfc7208Examples) {
  const std::pair<const char*, const char*> cases[] = {
      {"%{s}", "strong-bad@email.example.com"},
      {"%{o}", "email.example.com"},
      {"%{d}", "email.example.com"},
      {"%{d4}", "email.example.com"},
      {"%{d3}", "email.example.com"},
      {"%{d2}", "example.com"},
      {"%{d1}", "com"},
      {"%{dr}", "com.example.email"},
      {"%{d2r}", "example.email"},
      {"%{l}", "strong-bad"},
      {"%{l-}", "strong.bad"},
      {"%{lr}", "strong-bad"},
      {"%{lr-}", "bad.strong"},
      {"%{l1r-}", "strong"},
      {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
      {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
      {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
      {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
      {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
  };
  SpfRequest req = exampleRequest("192.0.2.3");
  for (const auto& [in, want] : cases) {
    SCOPED_TRACE(in);
    auto r = expandSpfMacros(in, req, "email.example.com", false);
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(*r, want);
  }
  SpfRequest v6 = exampleRequest("2001:db8::cb01");
  auto r = expandSpfMacros("%{ir}.%{v}._spf.%{d2}", v6, "email.example.com", false);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST(SpfMacro, LettersEscapesAndTransformers) {
  SpfRequest req = exampleRequest("192.0.2.3");
  struct Case {
    const char* in;
    bool exp;
    const char* want;   // nullptr: an error
  };
  const Case cases[] = {
      {"%{h}", false, "mx.example.org"},
      {"%{v}", false, "in-addr"},
      {"%{i}", false, "192.0.2.3"},
      {"%{p}", false, "unknown"},
      {"%%%_%-", true, "% %20"},
      {"%{S}", true, "strong-bad%40email.example.com"},               // upper case: URL-escaped
      {"%{L}", true, "strong-bad"},
      {"%{c}", true, "192.0.2.3"},
      {"%{r}", true, "mx.example.net"},
      {"%{t}", true, "1234567890"},
      {"%{c}", false, nullptr},                                        // c, r, t: exp only
      {"%{r}", false, nullptr},
      {"%{t}", false, nullptr},
      {"%{q}", true, nullptr},
      {"%{d0}", false, nullptr},
      {"%x", false, nullptr},
      {"%{d999}", false, "email.example.com"},                         // more parts than there are: all
      {"%{l-+}", false, "strong.bad"},
      {"%{dr-.}", false, "com.example.email"},
      {"%{s=}", true, "strong-bad@email.example.com"},
      {"Denied to %{d}", true, "Denied to email.example.com"},          // explanations have spaces
      {"a %{d}", false, nullptr},                                      // names do not
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = expandSpfMacros(c.in, req, "email.example.com", c.exp);
    if (!c.want) {
      EXPECT_FALSE(r);
      continue;
    }
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(*r, c.want);
  }
  // macro-multiple-delimiters: "foo-bar+zip+quux" split on '-' and '+'.
  req.sender = "foo-bar+zip+quux@example.com";
  EXPECT_EQ(*expandSpfMacros("%{l-+}", req, "example.com", false), "foo.bar.zip.quux");
  // A sender without a local part is postmaster's (§4.3).
  req.sender = "@example.com";
  EXPECT_EQ(*expandSpfMacros("%{l}", req, "example.com", false), "postmaster");
  // p: the validated name when given.
  EXPECT_EQ(*expandSpfMacros("%{p}", req, "example.com", false, "mx.example.com"), "mx.example.com");
  // Mapped IPv4 clients are IPv4.
  req.ip = *IpAddress::parse("::ffff:192.0.2.3");
  EXPECT_EQ(*expandSpfMacros("%{i}.%{v}", req, "example.com", false), "192.0.2.3.in-addr");
}

TEST(SpfMacro, LongNamesAreCutFromTheLeft) {
  SpfRequest req = exampleRequest("192.0.2.3");
  req.sender = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
               std::string(60, 'd') + "@example.com";
  auto r = expandSpfMacros("%{l}.%{d}", req, "example.com", false);
  ASSERT_TRUE(r);
  EXPECT_LE(r->size(), kSpfMaxDomainLength);
  EXPECT_EQ(*r, std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(60, 'd') + ".example.com");
  // Explanations are not names: not cut.
  auto e = expandSpfMacros("%{l}.%{d}", req, "example.com", true);
  ASSERT_TRUE(e);
  EXPECT_GT(e->size(), kSpfMaxDomainLength);
}

// ---------------------------------------------------------------------------------------
// check_host() over StaticDns

// A zone written compactly: name -> "TXT ...", "A 1.2.3.4", "AAAA ::1", "MX 10 host",
// "TEMPFAIL". PTR records go in `ptr` keyed by address text.
struct Zone {
  std::vector<std::pair<std::string, std::vector<std::string>>> names;
  std::vector<std::pair<std::string, std::vector<std::string>>> ptr;
};

StaticDns makeDns(const Zone& z) {
  StaticDns d;
  for (const auto& [name, rrs] : z.names) {
    for (const std::string& rr : rrs) {
      size_t sp = rr.find(' ');
      std::string type = rr.substr(0, sp), value = sp == std::string::npos ? std::string() : rr.substr(sp + 1);
      if (type == "TXT") d.txt_records[name].push_back(value);
      else if (type == "A" || type == "AAAA") d.addresses[name].push_back(*IpAddress::parse(value));
      else if (type == "MX") {
        size_t s2 = value.find(' ');
        d.mx_records[name].push_back({static_cast<uint16_t>(std::stoi(value.substr(0, s2))), value.substr(s2 + 1)});
      } else if (type == "TEMPFAIL") d.tempfail.push_back(name);
      else if (type == "EMPTY") d.txt_records[name];   // exists, no records
      else ADD_FAILURE() << "bad zone entry " << rr;
    }
  }
  for (const auto& [ip, names] : z.ptr) {
    std::string key = dns::reverseName(*IpAddress::parse(ip));
    if (names.size() == 1 && names[0] == "TEMPFAIL") d.tempfail.push_back(key);
    else d.ptr_records[key] = names;
  }
  return d;
}

struct HostCase {
  const char* name;
  const char* ip;
  const char* sender;   // MAIL FROM; the checked domain is its domain (or the HELO when empty)
  const char* helo;
  SpfResult want;
  const char* mechanism = nullptr;    // checked when set
  const char* explanation = nullptr;  // checked when set ("" = none)
  const char* problem = nullptr;      // a part of the problem, checked when set
};

SpfOutcome run(StaticDns& dns, const HostCase& c) {
  SpfRequest req;
  req.ip = *IpAddress::parse(c.ip);
  req.sender = c.sender;
  req.helo = c.helo;
  req.receiver = "mx.receiver.example";
  req.now = 1000;
  std::string domain = req.sender.empty() ? req.helo : req.sender.substr(req.sender.rfind('@') + 1);
  return test::runSync(checkHost(dns, req, domain));
}

void runTable(const Zone& zone, const std::vector<HostCase>& cases) {
  for (const HostCase& c : cases) {
    SCOPED_TRACE(c.name);
    StaticDns dns = makeDns(zone);
    SpfOutcome o = run(dns, c);
    EXPECT_STREQ(spfResultName(o.result), spfResultName(c.want)) << "problem: " << o.problem;
    if (c.mechanism) {
      EXPECT_EQ(o.mechanism, c.mechanism);
    }
    if (c.explanation) {
      EXPECT_EQ(o.explanation, c.explanation);
    }
    if (c.problem) {
      EXPECT_NE(o.problem.find(c.problem), std::string::npos) << o.problem;
    }
  }
}

// rfc7208-tests "Initial processing" and "Record lookup" / "Selecting records".
TEST(SpfCheckHost, InitialProcessingAndRecordLookup) {
  std::string label63(63, 'a'), label64(64, 'a');
  Zone z{{
      {"example.net", {"TXT v=spf1 -all exp=exp.example.net"}},
      {"exp.example.net", {"TXT %{l}"}},
      {label63 + ".example.com", {"TXT v=spf1 -all"}},
      {"hosterror.example.com", {"TEMPFAIL"}},
      {"nospf.example.com", {"TXT some other text", "A 1.2.3.4"}},
      {"multitxt.example.com", {"TXT v=spf10 +all", "TXT v=spf1 -all", "TXT hello"}},
      {"multispf.example.com", {"TXT v=spf1 -all", "TXT v=spf1 +all"}},
      {"nospace.example.com", {"TXT v=spf1mx"}},
      {"empty.example.com", {"TXT v=spf1"}},
      {"case.example.com", {"TXT v=sPf1 +all"}},
      {"syntax.example.com", {"TXT v=spf1 foo -all"}},
      {"long.example.com", {"TXT v=spf1 " + std::string(kSpfMaxRecordBytes, 'x') + "=y -all"}},
  }};
  runTable(z, {
      {"toolonglabel", "1.2.3.5", ("lyme.eater@" + label64 + ".example.com").c_str(), "mail.example.net",
       SpfResult::kNone},
      {"longlabel", "1.2.3.5", ("lyme.eater@" + label63 + ".example.com").c_str(), "mail.example.net",
       SpfResult::kFail, "-all"},
      {"emptylabel", "1.2.3.5", "lyme.eater@A...example.com", "mail.example.net", SpfResult::kNone},
      {"helo-not-fqdn", "1.2.3.5", "", "A2345678", SpfResult::kNone},
      {"helo-domain-literal", "1.2.3.5", "", "[1.2.3.5]", SpfResult::kNone},
      {"domain-literal", "1.2.3.5", "foo@[1.2.3.5]", "OEMCOMPUTER", SpfResult::kNone},
      {"nolocalpart", "1.2.3.4", "@example.net", "mail.example.net", SpfResult::kFail, "-all", "postmaster"},
      {"hello-is-postmaster", "1.2.3.4", "", "example.net", SpfResult::kFail, "-all", "postmaster"},
      {"nxdomain", "1.2.3.4", "a@nothere.example.com", "h.example.com", SpfResult::kNone},
      {"nospf", "1.2.3.4", "a@nospf.example.com", "h.example.com", SpfResult::kNone},
      {"txttimeout", "1.2.3.4", "a@hosterror.example.com", "h.example.com", SpfResult::kTempError, nullptr,
       nullptr, "DNS error"},
      {"multitxt (v=spf10 is not SPF)", "1.2.3.4", "a@multitxt.example.com", "h.example.com", SpfResult::kFail},
      {"multispf", "1.2.3.4", "a@multispf.example.com", "h.example.com", SpfResult::kPermError, nullptr, nullptr,
       "2 SPF records"},
      {"nospace1", "1.2.3.4", "a@nospace.example.com", "h.example.com", SpfResult::kNone},
      {"empty", "1.2.3.4", "a@empty.example.com", "h.example.com", SpfResult::kNeutral, "default"},
      {"case-insensitive", "1.2.3.4", "a@case.example.com", "h.example.com", SpfResult::kPass, "+all"},
      {"syntax error", "1.2.3.4", "a@syntax.example.com", "h.example.com", SpfResult::kPermError, "", nullptr,
       "unknown mechanism 'foo' at term 1"},
      {"record too long", "1.2.3.4", "a@long.example.com", "h.example.com", SpfResult::kPermError, nullptr,
       nullptr, "longer than"},
  });
}

// "ALL", "A", "MX", "IP4", "IP6" and "EXISTS" mechanism semantics.
TEST(SpfCheckHost, Mechanisms) {
  Zone z{{
      {"all.example.com", {"TXT v=spf1 ?all"}},
      {"e1.example.com", {"TXT v=spf1 a -all", "A 1.2.3.4", "A 1.2.3.5", "AAAA 1234::1"}},
      {"e2.example.com", {"TXT v=spf1 a/24 -all", "A 1.2.3.1"}},
      {"e3.example.com", {"TXT v=spf1 a//33 -all", "AAAA 1234::8000:0:0:1"}},
      {"e4.example.com", {"TXT v=spf1 a:foo:bar/baz.example.com -all"}},
      {"e5.example.com", {"TXT v=spf1 a:nothere.example.com -all"}},
      {"e6.example.com", {"TXT v=spf1 a/0 -all", "A 9.9.9.9"}},
      {"e7.example.com", {"TXT v=spf1 a:e1.example.com//127 ~all"}},
      {"mx1.example.com", {"TXT v=spf1 mx -all", "MX 10 mail1.example.com", "MX 20 mail2.example.com"}},
      {"mail1.example.com", {"A 5.6.7.8"}},
      {"mail2.example.com", {"A 1.2.3.4", "AAAA 1234::2"}},
      {"mx2.example.com", {"TXT v=spf1 mx:mx1.example.com/24 -all"}},
      {"mx3.example.com", {"TXT v=spf1 mx:nothere.example.com -all"}},
      {"mx4.example.com", {"TXT v=spf1 mx -all", "MX 0 ."}},
      {"mx5.example.com", {"TXT v=spf1 mx -all", "MX 10 nohost.example.com"}},
      {"mx6.example.com", {"TXT v=spf1 mx -all", "MX 10 broken.example.com"}},
      {"broken.example.com", {"TEMPFAIL"}},
      {"ip4.example.com", {"TXT v=spf1 ip4:1.2.3.0/24 -all"}},
      {"ip40.example.com", {"TXT v=spf1 ip4:9.0.0.0/0 -all"}},
      {"ip6.example.com", {"TXT v=spf1 ip6:1234::/16 ip6:::FFFF:1.2.3.4/128 -all"}},
      {"ip60.example.com", {"TXT v=spf1 ip6:::/0 -all"}},
      {"ex1.example.com", {"TXT v=spf1 exists:mail6.example.com -all"}},
      {"ex2.example.com", {"TXT v=spf1 exists:mail1.example.com -all"}},
      {"ex3.example.com", {"TXT v=spf1 exists:%{i}.in.example.com -all"}},
      {"ex4.example.com", {"TXT v=spf1 exists:broken.example.com -all"}},
      {"1.2.3.4.in.example.com", {"A 127.0.0.2"}},
      {"mail6.example.com", {"AAAA 1234::3"}},
      {"atemp.example.com", {"TXT v=spf1 a:broken.example.com -all"}},
      // §7.3: 4 * 64 + 17 + 1 + 13 = 287 octets; without the leftmost label (w) 223 fit.
      {"trunc.example.com", {"TXT v=spf1 exists:%{l}.%{d}.t.example.com -all"}},
      {std::string(63, 'x') + "." + std::string(63, 'y') + "." + std::string(63, 'z') + ".trunc.example.com.t.example.com",
       {"A 127.0.0.2"}},
  }};
  runTable(z, {
      {"all-neutral", "1.2.3.4", "a@all.example.com", "h.example", SpfResult::kNeutral, "?all"},
      {"a-multi-ip1", "1.2.3.4", "a@e1.example.com", "h.example", SpfResult::kPass, "a"},
      {"a-multi-ip2", "1.2.3.5", "a@e1.example.com", "h.example", SpfResult::kPass, "a"},
      {"a-nomatch", "1.2.3.6", "a@e1.example.com", "h.example", SpfResult::kFail, "-all"},
      {"a-ip6", "1234::1", "a@e1.example.com", "h.example", SpfResult::kPass, "a"},
      {"a-ip4mapped (IPv4 semantics)", "::ffff:1.2.3.4", "a@e1.example.com", "h.example", SpfResult::kPass, "a"},
      {"a-cidr4", "1.2.3.200", "a@e2.example.com", "h.example", SpfResult::kPass, "a/24"},
      {"a-cidr4 ipv6 client uses /128", "1234::1", "a@e2.example.com", "h.example", SpfResult::kFail},
      {"a-cidr6-33", "1234::1", "a@e3.example.com", "h.example", SpfResult::kPass, "a//33"},
      {"a-cidr6-33 outside", "1234:0:8000::1", "a@e3.example.com", "h.example", SpfResult::kFail},
      {"a-colon-domain", "1.2.3.4", "a@e4.example.com", "h.example", SpfResult::kFail},
      {"a-nxdomain", "1.2.3.4", "a@e5.example.com", "h.example", SpfResult::kFail},
      {"a-cidr4-0", "1.2.3.4", "a@e6.example.com", "h.example", SpfResult::kPass},
      {"a-cidr4-0 ipv6 client", "1234::1", "a@e6.example.com", "h.example", SpfResult::kFail},
      {"a-cidr6-127", "1234::", "a@e7.example.com", "h.example", SpfResult::kPass},
      {"mx-implicit", "1.2.3.4", "a@mx1.example.com", "h.example", SpfResult::kPass, "mx"},
      {"mx-ip6", "1234::2", "a@mx1.example.com", "h.example", SpfResult::kPass, "mx"},
      {"mx-nomatch", "1.2.4.4", "a@mx1.example.com", "h.example", SpfResult::kFail},
      {"mx-cidr4", "5.6.7.99", "a@mx2.example.com", "h.example", SpfResult::kPass, "mx:mx1.example.com/24"},
      {"mx-nxdomain", "1.2.3.4", "a@mx3.example.com", "h.example", SpfResult::kFail},
      {"mx-null", "1.2.3.4", "a@mx4.example.com", "h.example", SpfResult::kFail},
      {"mx host without address", "1.2.3.4", "a@mx5.example.com", "h.example", SpfResult::kFail},
      {"mx host temporary failure", "1.2.3.4", "a@mx6.example.com", "h.example", SpfResult::kTempError, "mx"},
      {"ip4-cidr", "1.2.3.77", "a@ip4.example.com", "h.example", SpfResult::kPass, "ip4:1.2.3.0/24"},
      {"ip4-nomatch", "1.2.4.77", "a@ip4.example.com", "h.example", SpfResult::kFail},
      {"ip4 never matches ipv6", "1234::1", "a@ip4.example.com", "h.example", SpfResult::kFail},
      {"cidr4-0", "200.1.2.3", "a@ip40.example.com", "h.example", SpfResult::kPass},
      {"ip6-cidr", "1234:5678::9", "a@ip6.example.com", "h.example", SpfResult::kPass, "ip6:1234::/16"},
      {"ip4-mapped-ip6", "1.2.3.4", "a@ip6.example.com", "h.example", SpfResult::kFail, "-all"},
      {"mapped client ip4-mapped-ip6", "::ffff:1.2.3.4", "a@ip6.example.com", "h.example", SpfResult::kFail},
      {"cidr6-0-ip4", "1.2.3.4", "a@ip60.example.com", "h.example", SpfResult::kFail},
      {"cidr6-0", "2001:db8::1", "a@ip60.example.com", "h.example", SpfResult::kPass},
      {"exists-ip6only (A asked)", "1.2.3.4", "a@ex1.example.com", "h.example", SpfResult::kFail},
      {"exists-ip6", "1234::1", "a@ex2.example.com", "h.example", SpfResult::kPass, "exists:mail1.example.com"},
      {"exists-ip4", "1.2.3.4", "a@ex2.example.com", "h.example", SpfResult::kPass},
      {"exists macro", "1.2.3.4", "a@ex3.example.com", "h.example", SpfResult::kPass},
      {"exists macro nomatch", "1.2.3.5", "a@ex3.example.com", "h.example", SpfResult::kFail},
      {"exists temperror", "1.2.3.5", "a@ex4.example.com", "h.example", SpfResult::kTempError},
      {"a temperror", "1.2.3.5", "a@atemp.example.com", "h.example", SpfResult::kTempError, "a:broken.example.com"},
      {"domain-name-truncation", "1.2.3.4",
       (std::string(63, 'w') + "." + std::string(63, 'x') + "." + std::string(63, 'y') + "." + std::string(63, 'z') +
        "@trunc.example.com").c_str(),
       "h.example", SpfResult::kPass, "exists:%{l}.%{d}.t.example.com"},
  });
}

// "PTR mechanism" and %{p}.
TEST(SpfCheckHost, PtrAndPMacro) {
  Zone z{{
      {"e1.example.com", {"TXT v=spf1 ptr -all", "A 1.2.3.4"}},
      {"e2.example.com", {"TXT v=spf1 ptr:example.com -all"}},
      {"e3.example.com", {"TXT v=spf1 ptr:other.example -all"}},
      {"e4.example.com", {"TXT v=spf1 -all exp=pexp.example.com"}},
      {"pexp.example.com", {"TXT %{p}"}},
      {"e5.example.com", {"TXT v=spf1 exists:%{p}.pm.example.com -all"}},
      {"e1.example.com.pm.example.com", {"A 127.0.0.2"}},
      {"x.other.example", {"A 1.2.3.4"}},
      {"ptr6.example.com", {"AAAA 2001:db8::5"}},
      {"e6.example.com", {"TXT v=spf1 ptr:example.com -all"}},
  },
         {
             {"1.2.3.4", {"e1.example.com", "x.other.example"}},
             {"1.2.3.5", {"e1.example.com"}},   // e1 has no 1.2.3.5: not validated
             {"1.2.3.6", {"TEMPFAIL"}},
             {"2001:db8::5", {"ptr6.example.com"}},
         }};
  runTable(z, {
      {"ptr-match-implicit", "1.2.3.4", "a@e1.example.com", "h.example", SpfResult::kPass, "ptr"},
      {"ptr-match-target", "1.2.3.4", "a@e2.example.com", "h.example", SpfResult::kPass, "ptr:example.com"},
      {"ptr-other-validated-name", "1.2.3.4", "a@e3.example.com", "h.example", SpfResult::kPass},
      {"ptr-nomatch-invalid", "1.2.3.5", "a@e1.example.com", "h.example", SpfResult::kFail},
      {"ptr dns error is no match", "1.2.3.6", "a@e1.example.com", "h.example", SpfResult::kFail},
      {"ptr-match-ip6", "2001:db8::5", "a@e6.example.com", "h.example", SpfResult::kPass},
      {"ptr no ptr records", "1.2.3.9", "a@e1.example.com", "h.example", SpfResult::kFail},
      {"p-macro-ip4-valid", "1.2.3.4", "a@e4.example.com", "h.example", SpfResult::kFail, "-all", "e1.example.com"},
      {"p-macro-ip4-novalid", "1.2.3.5", "a@e4.example.com", "h.example", SpfResult::kFail, "-all", "unknown"},
      {"p-macro in exists", "1.2.3.4", "a@e5.example.com", "h.example", SpfResult::kPass},
      {"p-macro in exists, unvalidated", "1.2.3.5", "a@e5.example.com", "h.example", SpfResult::kFail},
  });
}

// "Include mechanism semantics and syntax" and "redirect"/"exp" semantics.
TEST(SpfCheckHost, IncludeRedirectExp) {
  Zone z{{
      {"ip5.example.com", {"TXT v=spf1 ip4:1.2.3.5 -all"}},
      {"ip6.example.com", {"TXT v=spf1 ip4:1.2.3.6 ~all"}},
      {"ip7.example.com", {"TXT v=spf1 ip4:1.2.3.7 ?all"}},
      {"ip8.example.com", {"TEMPFAIL"}},
      {"erehwon.example.com", {"TXT v=spfl am not an SPF record"}},
      {"syntax.example.com", {"TXT v=spf1 include:ip5.example.com foo"}},
      {"e1.example.com", {"TXT v=spf1 include:ip5.example.com ~all"}},
      {"e2.example.com", {"TXT v=spf1 include:ip6.example.com all"}},
      {"e3.example.com", {"TXT v=spf1 include:ip7.example.com -all"}},
      {"e4.example.com", {"TXT v=spf1 include:ip8.example.com -all"}},
      {"e5.example.com", {"TXT v=spf1 include:erehwon.example.com -all"}},
      {"e6.example.com", {"TXT v=spf1 include:syntax.example.com -all"}},
      {"e7.example.com", {"TXT v=spf1 include:nothere.example.com -all"}},
      {"e8.example.com", {"TXT v=spf1 include:ip5.example.com -all exp=exp8.example.com"}},
      {"exp8.example.com", {"TXT Denied %{i} for %{s} by %{d}"}},
      {"r1.example.com", {"TXT v=spf1 redirect=ip5.example.com exp=exp8.example.com"}},
      {"r2.example.com", {"TXT v=spf1 redirect=nothere.example.com"}},
      {"r3.example.com", {"TXT v=spf1 +all redirect=ip5.example.com"}},
      {"r4.example.com", {"TXT v=spf1 redirect=r5.example.com"}},
      {"r5.example.com", {"TXT v=spf1 -all exp=exp5.example.com"}},
      {"exp5.example.com", {"TXT Go away %{l}"}},
      {"r6.example.com", {"TXT v=spf1 redirect=%{d}.wrap.example.com"}},
      {"r6.example.com.wrap.example.com", {"TXT v=spf1 ip4:9.9.9.9 -all"}},
      {"r7.example.com", {"TXT v=spf1 redirect=erehwon.example.com"}},
      {"x1.example.com", {"TXT v=spf1 -all exp=noexp.example.com"}},
      {"x2.example.com", {"TXT v=spf1 -all exp=twoexp.example.com"}},
      {"twoexp.example.com", {"TXT one", "TXT two"}},
      {"x3.example.com", {"TXT v=spf1 -all exp=badexp.example.com"}},
      {"badexp.example.com", {"TXT bad %{x} macro"}},
      {"x4.example.com", {"TXT v=spf1 -all exp=brokenexp.example.com"}},
      {"brokenexp.example.com", {"TEMPFAIL"}},
      {"x5.example.com", {"TXT v=spf1 ~all exp=exp8.example.com"}},
      {"x6.example.com", {"TXT v=spf1 -all exp=ctexp.example.com"}},
      {"ctexp.example.com", {"TXT %{c} %{r} %{t} %{S}"}},
      {"x7.example.com", {"TXT v=spf1 include:e8.example.com -all"}},
  }};
  runTable(z, {
      {"include-pass", "1.2.3.5", "a@e1.example.com", "h.example", SpfResult::kPass, "include:ip5.example.com"},
      {"include-fail", "1.2.3.4", "a@e1.example.com", "h.example", SpfResult::kSoftFail, "~all"},
      {"include-softfail", "1.2.3.4", "a@e2.example.com", "h.example", SpfResult::kPass, "all"},
      {"include-neutral", "1.2.3.4", "a@e3.example.com", "h.example", SpfResult::kFail, "-all"},
      {"include-temperror", "1.2.3.4", "a@e4.example.com", "h.example", SpfResult::kTempError,
       "include:ip8.example.com"},
      {"include-none", "1.2.3.4", "a@e5.example.com", "h.example", SpfResult::kPermError,
       "include:erehwon.example.com", nullptr, "no SPF record"},
      {"include-syntax-error", "1.2.3.4", "a@e6.example.com", "h.example", SpfResult::kPermError},
      {"include-nxdomain", "1.2.3.4", "a@e7.example.com", "h.example", SpfResult::kPermError},
      {"exp with macros", "1.2.3.4", "joe@e8.example.com", "h.example", SpfResult::kFail, "-all",
       "Denied 1.2.3.4 for joe@e8.example.com by e8.example.com"},
      {"redirect pass", "1.2.3.5", "a@r1.example.com", "h.example", SpfResult::kPass, "ip4:1.2.3.5"},
      {"redirect-cancels-exp", "1.2.3.4", "a@r1.example.com", "h.example", SpfResult::kFail, "-all", ""},
      {"redirect-none", "1.2.3.4", "a@r2.example.com", "h.example", SpfResult::kPermError, nullptr, nullptr,
       "redirect target"},
      {"redirect ignored beside all", "1.2.3.4", "a@r3.example.com", "h.example", SpfResult::kPass, "+all"},
      {"redirect keeps target's exp (d is the target)", "1.2.3.4", "bob@r4.example.com", "h.example",
       SpfResult::kFail, "-all", "Go away bob"},
      {"redirect with macro", "9.9.9.9", "a@r6.example.com", "h.example", SpfResult::kPass},
      {"redirect to non-SPF TXT", "1.2.3.4", "a@r7.example.com", "h.example", SpfResult::kPermError},
      {"exp-no-txt", "1.2.3.4", "a@x1.example.com", "h.example", SpfResult::kFail, "-all", ""},
      {"exp-multiple-txt", "1.2.3.4", "a@x2.example.com", "h.example", SpfResult::kFail, "-all", ""},
      {"explanation-syntax-error", "1.2.3.4", "a@x3.example.com", "h.example", SpfResult::kFail, "-all", ""},
      {"exp-dns-error", "1.2.3.4", "a@x4.example.com", "h.example", SpfResult::kFail, "-all", ""},
      {"exp only on fail", "1.2.3.4", "a@x5.example.com", "h.example", SpfResult::kSoftFail, "~all", ""},
      {"exp c r t and url-escaping", "1.2.3.4", "a b@x6.example.com", "h.example", SpfResult::kFail, "-all",
       "1.2.3.4 mx.receiver.example 1000 a%20b%40x6.example.com"},
      {"include-ignores-exp", "1.2.3.4", "a@x7.example.com", "h.example", SpfResult::kFail, "-all", ""},
  });
}

// "Processing limits": 10 DNS terms, 2 void lookups, 10 MX names, 10 PTR names.
TEST(SpfCheckHost, Limits) {
  Zone z{{
      {"loop.example.com", {"TXT v=spf1 include:loop.example.com -all"}},
      {"rloop.example.com", {"TXT v=spf1 redirect=rloop.example.com"}},
      {"at.example.com", {"TXT v=spf1 a a a a a a a a a a ip4:1.2.3.4 -all", "A 9.9.9.9"}},
      {"over.example.com", {"TXT v=spf1 a a a a a a a a a a a ip4:1.2.3.4 -all", "A 9.9.9.9"}},
      {"ip.example.com", {"TXT v=spf1 ip4:9.9.9.9 ip4:9.9.9.8 ip4:9.9.9.7 ip4:9.9.9.6 ip4:9.9.9.5 ip4:9.9.9.4 "
                          "ip4:9.9.9.3 ip4:9.9.9.2 ip4:9.9.9.1 ip4:8.9.9.9 ip4:8.9.9.8 ip4:1.2.3.4 -all"}},
      {"chain1.example.com", {"TXT v=spf1 a a a a a include:chain2.example.com -all", "A 9.9.9.9"}},
      {"chain2.example.com", {"TXT v=spf1 a a a a a -all", "A 9.9.9.9"}},
      {"voidat.example.com", {"TXT v=spf1 a:n1.example.com mx:n2.example.com ip4:1.2.3.4 -all"}},
      {"voidover.example.com", {"TXT v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com ip4:1.2.3.4 -all"}},
      {"voidempty.example.com", {"TXT v=spf1 a:noaddr.example.com a:noaddr.example.com a:noaddr.example.com ip4:1.2.3.4"}},
      {"noaddr.example.com", {"EMPTY"}},
      {"mxlimit.example.com",
       {"TXT v=spf1 mx ip4:1.2.3.4", "MX 1 m1.example.com", "MX 2 m2.example.com", "MX 3 m3.example.com",
        "MX 4 m4.example.com", "MX 5 m5.example.com", "MX 6 m6.example.com", "MX 7 m7.example.com",
        "MX 8 m8.example.com", "MX 9 m9.example.com", "MX 10 m10.example.com", "MX 11 m11.example.com"}},
      {"mxat.example.com",
       {"TXT v=spf1 mx -all", "MX 1 m1.example.com", "MX 2 m2.example.com", "MX 3 m3.example.com",
        "MX 4 m4.example.com", "MX 5 m5.example.com", "MX 6 m6.example.com", "MX 7 m7.example.com",
        "MX 8 m8.example.com", "MX 9 m9.example.com", "MX 10 m10.example.com"}},
      {"m1.example.com", {"A 9.0.0.1"}}, {"m2.example.com", {"A 9.0.0.2"}}, {"m3.example.com", {"A 9.0.0.3"}},
      {"m4.example.com", {"A 9.0.0.4"}}, {"m5.example.com", {"A 9.0.0.5"}}, {"m6.example.com", {"A 9.0.0.6"}},
      {"m7.example.com", {"A 9.0.0.7"}}, {"m8.example.com", {"A 9.0.0.8"}}, {"m9.example.com", {"A 9.0.0.9"}},
      {"m10.example.com", {"A 1.2.3.4"}}, {"m11.example.com", {"A 1.2.3.4"}},
      {"ptrlimit.example.com", {"TXT v=spf1 ptr -all"}},
      {"p1.ptrlimit.example.com", {"A 9.0.0.1"}}, {"p11.ptrlimit.example.com", {"A 1.2.3.4"}},
      {"p10.ptrlimit.example.com", {"A 1.2.3.5"}},
      {"falsea.example.com", {"TXT v=spf1 a -all", "A 9.0.0.1", "A 9.0.0.2", "A 9.0.0.3", "A 9.0.0.4", "A 9.0.0.5",
                              "A 9.0.0.6", "A 9.0.0.7", "A 9.0.0.8", "A 9.0.0.9", "A 9.0.0.10", "A 1.2.3.4"}},
  },
         {
             {"1.2.3.4", {"p1.ptrlimit.example.com", "p2.ptrlimit.example.com", "p3.ptrlimit.example.com",
                          "p4.ptrlimit.example.com", "p5.ptrlimit.example.com", "p6.ptrlimit.example.com",
                          "p7.ptrlimit.example.com", "p8.ptrlimit.example.com", "p9.ptrlimit.example.com",
                          "p10.ptrlimit.example.com", "p11.ptrlimit.example.com"}},
             {"1.2.3.5", {"p1.ptrlimit.example.com", "p2.ptrlimit.example.com", "p3.ptrlimit.example.com",
                          "p4.ptrlimit.example.com", "p5.ptrlimit.example.com", "p6.ptrlimit.example.com",
                          "p7.ptrlimit.example.com", "p8.ptrlimit.example.com", "p9.ptrlimit.example.com",
                          "p10.ptrlimit.example.com", "p11.ptrlimit.example.com"}},
         }};
  runTable(z, {
      {"include-loop", "1.2.3.4", "a@loop.example.com", "h.example", SpfResult::kPermError,
       "include:loop.example.com", nullptr, "more than 10 DNS-querying terms"},
      {"redirect-loop", "1.2.3.4", "a@rloop.example.com", "h.example", SpfResult::kPermError, nullptr, nullptr,
       "more than 10 DNS-querying terms"},
      {"mech-at-limit", "1.2.3.4", "a@at.example.com", "h.example", SpfResult::kPass, "ip4:1.2.3.4"},
      {"mech-over-limit", "1.2.3.4", "a@over.example.com", "h.example", SpfResult::kPermError, "a"},
      {"ip4 terms do not count", "1.2.3.4", "a@ip.example.com", "h.example", SpfResult::kPass},
      {"limit counts across include", "1.2.3.4", "a@chain1.example.com", "h.example", SpfResult::kPermError},
      {"void-at-limit", "1.2.3.4", "a@voidat.example.com", "h.example", SpfResult::kPass},
      {"void-over-limit", "1.2.3.4", "a@voidover.example.com", "h.example", SpfResult::kPermError,
       "exists:n3.example.com", nullptr, "void lookups"},
      {"void lookups include NODATA", "1.2.3.4", "a@voidempty.example.com", "h.example", SpfResult::kPermError},
      {"mx-limit", "1.2.3.4", "a@mxlimit.example.com", "h.example", SpfResult::kPermError, "mx", nullptr,
       "more than 10 MX"},
      {"mx-at-limit", "1.2.3.4", "a@mxat.example.com", "h.example", SpfResult::kPass},
      {"ptr-limit: the 11th name is not looked at", "1.2.3.4", "a@ptrlimit.example.com", "h.example",
       SpfResult::kFail},
      {"ptr-limit: the 10th name is", "1.2.3.5", "a@ptrlimit.example.com", "h.example", SpfResult::kPass},
      {"false-a-limit (no limit on A records)", "1.2.3.4", "a@falsea.example.com", "h.example", SpfResult::kPass},
  });
}

TEST(SpfCheckHost, CountsLookupsAndReportsDomain) {
  StaticDns dns = makeDns({{
      {"example.org", {"TXT v=spf1 a mx include:_spf.example.org -all"}},
      {"_spf.example.org", {"TXT v=spf1 ip4:192.0.2.0/24 -all"}},
  }});
  SpfRequest req;
  req.ip = *IpAddress::parse("192.0.2.9");
  req.sender = "user@example.org";
  req.helo = "client.example.net";
  SpfOutcome o = test::runSync(checkHost(dns, req, "example.org"));
  EXPECT_EQ(o.result, SpfResult::kPass);
  EXPECT_EQ(o.domain, "example.org");
  EXPECT_EQ(o.mechanism, "include:_spf.example.org");
  EXPECT_EQ(o.dns_lookups, 3u);   // a, mx, include
  EXPECT_TRUE(o.problem.empty());
  // TXT example.org, A example.org, MX example.org, TXT _spf.example.org.
  EXPECT_EQ(dns.lookups, 4u);
}

TEST(SpfCheckHost, HeloIdentity) {
  StaticDns dns = makeDns({{{"mail.example.net", {"TXT v=spf1 a -all", "A 192.0.2.7"}},
                            {"helo.example.net", {"TXT v=spf1 exists:%{h}.%{l}.x.example.net -all"}},
                            {"helo.example.net.postmaster.x.example.net", {"A 127.0.0.2"}}}});
  SpfRequest req;
  req.ip = *IpAddress::parse("192.0.2.7");
  req.helo = "mail.example.net";
  EXPECT_EQ(test::runSync(checkHost(dns, req, "mail.example.net")).result, SpfResult::kPass);
  req.ip = *IpAddress::parse("192.0.2.8");
  EXPECT_EQ(test::runSync(checkHost(dns, req, "mail.example.net")).result, SpfResult::kFail);
  // An empty MAIL FROM is postmaster@<helo> for %{l} and %{s}.
  req.helo = "helo.example.net";
  EXPECT_EQ(test::runSync(checkHost(dns, req, "helo.example.net")).result, SpfResult::kPass);
}

}  // namespace
}  // namespace postern::auth
