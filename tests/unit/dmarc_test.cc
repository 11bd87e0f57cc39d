// DMARC (RFC 7489): the record parser (§6.3, §6.4), organizational domains (§3.2), and
// checkDmarc's policy discovery (§6.6.3), alignment (§3.1), sp= and pct= over auth::StaticDns.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/dmarc.h"
#include "run_sync.h"

using namespace postern;
using namespace postern::auth;

namespace {

struct RecordCase {
  const char* text;
  bool ok;
  DmarcPolicy p = DmarcPolicy::kNone;
  int sp = -1;   // -1: absent, else a DmarcPolicy
  bool adkim_strict = false, aspf_strict = false;
  unsigned pct = 100;
  size_t rua = 0;
};

const RecordCase kRecords[] = {
    {"v=DMARC1; p=none", true, DmarcPolicy::kNone},
    {"v=DMARC1; p=reject;", true, DmarcPolicy::kReject},
    {"v=DMARC1;p=quarantine", true, DmarcPolicy::kQuarantine},
    {"v = DMARC1 ;\tp = Reject ; sp = NONE", true, DmarcPolicy::kReject, 0},
    {"V=DMARC1; P=QUARANTINE; SP=reject; ADKIM=S; ASPF=s; PCT=20", true, DmarcPolicy::kQuarantine, 2, true, true, 20},
    {"v=DMARC1; p=reject; adkim=r; aspf=r", true, DmarcPolicy::kReject},
    {"v=DMARC1; p=reject; adkim=x; aspf=strict", true, DmarcPolicy::kReject},   // bad values: defaults
    {"v=DMARC1; p=reject; pct=0", true, DmarcPolicy::kReject, -1, false, false, 0},
    {"v=DMARC1; p=reject; pct=100", true, DmarcPolicy::kReject, -1, false, false, 100},
    {"v=DMARC1; p=reject; pct=101", true, DmarcPolicy::kReject, -1, false, false, 100},
    {"v=DMARC1; p=reject; pct=0050", true, DmarcPolicy::kReject, -1, false, false, 100},   // 1*3DIGIT
    {"v=DMARC1; p=reject; pct=-5", true, DmarcPolicy::kReject, -1, false, false, 100},
    {"v=DMARC1; p=reject; pct=", true, DmarcPolicy::kReject, -1, false, false, 100},
    {"v=DMARC1; p=none; rua=mailto:a@example.org,mailto:b@example.net!10m", true, DmarcPolicy::kNone, -1, false,
     false, 100, 2},
    {"v=DMARC1; p=none; rua=mailto:a@example.org, nonsense ,mailto:c@example.org!x", true, DmarcPolicy::kNone, -1,
     false, false, 100, 1},
    {"v=DMARC1; p=reject; fo=1:d; rf=afrf; ri=86400; ruf=mailto:f@example.org", true, DmarcPolicy::kReject},
    {"v=DMARC1; p=reject; future=1; x-tag=whatever", true, DmarcPolicy::kReject},   // unknown tags ignored
    {"v=DMARC1; p=reject; garbage; sp=none", true, DmarcPolicy::kReject, 0},     // a tag without '='
    {"v=DMARC1; p=reject; sp=none; sp=reject", true, DmarcPolicy::kReject, 0},   // first one counts
    {"  v=DMARC1; p=reject  ", true, DmarcPolicy::kReject},
    // §6.6.3 step 6: no valid p= (or a bad sp=), but a valid rua=: as p=none.
    {"v=DMARC1; rua=mailto:r@example.org", true, DmarcPolicy::kNone, -1, false, false, 100, 1},
    {"v=DMARC1; p=bogus; rua=mailto:r@example.org", true, DmarcPolicy::kNone, -1, false, false, 100, 1},
    {"v=DMARC1; p=reject; sp=bogus; rua=mailto:r@example.org", true, DmarcPolicy::kNone, -1, false, false, 100, 1},
    {"v=DMARC1; rua=mailto:r@example.org; p=reject", true, DmarcPolicy::kNone, -1, false, false, 100, 1},
    // Errors.
    {"v=DMARC1", false},
    {"v=DMARC1;", false},
    {"v=DMARC1; p=bogus", false},
    {"v=DMARC1; p=reject; sp=bogus", false},
    {"v=DMARC1; sp=reject; p=reject", false},   // p= must come second (§6.4)
    {"v=DMARC1; rua=nonsense", false},
    {"v=DMARC1; p=", false},
    {"p=reject; v=DMARC1", false},
    {"v=DMARC2; p=reject", false},
    {"v=dmarc1; p=reject", false},   // the value matches precisely (§6.3)
    {"v=spf1 -all", false},
    {"", false},
    {";;;", false},
};

TEST(DmarcRecord, Table) {
  for (const RecordCase& c : kRecords) {
    SCOPED_TRACE(c.text);
    auto r = parseDmarcRecord(c.text);
    ASSERT_EQ(r.isOk(), c.ok) << (r.isOk() ? "" : r.status().message());
    if (!c.ok) {
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    EXPECT_EQ(r->p, c.p);
    EXPECT_EQ(r->sp.has_value(), c.sp >= 0);
    if (c.sp >= 0 && r->sp) {
      EXPECT_EQ(*r->sp, static_cast<DmarcPolicy>(c.sp));
    }
    EXPECT_EQ(r->adkim_strict, c.adkim_strict);
    EXPECT_EQ(r->aspf_strict, c.aspf_strict);
    EXPECT_EQ(r->pct, c.pct);
    EXPECT_EQ(r->rua.size(), c.rua);
  }
}

TEST(DmarcRecord, KeepsUrisAndLimits) {
  auto r = parseDmarcRecord("v=DMARC1; p=none; rua=mailto:a@example.org!10m; ruf=mailto:f@example.org");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->rua, std::vector<std::string>{"mailto:a@example.org!10m"});
  EXPECT_EQ(r->ruf, std::vector<std::string>{"mailto:f@example.org"});

  std::string many = "v=DMARC1; p=none; rua=";
  for (size_t i = 0; i < kDmarcMaxUris + 5; ++i) many += "mailto:r" + std::to_string(i) + "@example.org,";
  auto m = parseDmarcRecord(many);
  ASSERT_TRUE(m.isOk());
  EXPECT_EQ(m->rua.size(), kDmarcMaxUris);

  std::string big = "v=DMARC1; p=reject; x=" + std::string(kDmarcMaxRecordBytes, 'a');
  EXPECT_FALSE(parseDmarcRecord(big).isOk());
}

TEST(DmarcRecord, IsDmarcRecord) {
  EXPECT_TRUE(isDmarcRecord("v=DMARC1; p=none"));
  EXPECT_TRUE(isDmarcRecord("v=DMARC1"));
  EXPECT_TRUE(isDmarcRecord("v = DMARC1;p=bogus"));
  EXPECT_FALSE(isDmarcRecord("v=DMARC10; p=none"));
  EXPECT_FALSE(isDmarcRecord("p=none; v=DMARC1"));
  EXPECT_FALSE(isDmarcRecord("v=spf1 -all"));
  EXPECT_FALSE(isDmarcRecord("google-site-verification=abc"));
}

TEST(DmarcRecord, Names) {
  EXPECT_STREQ(dmarcPolicyName(DmarcPolicy::kNone), "none");
  EXPECT_STREQ(dmarcPolicyName(DmarcPolicy::kQuarantine), "quarantine");
  EXPECT_STREQ(dmarcPolicyName(DmarcPolicy::kReject), "reject");
  EXPECT_STREQ(dmarcResultName(DmarcResult::kNone), "none");
  EXPECT_STREQ(dmarcResultName(DmarcResult::kPass), "pass");
  EXPECT_STREQ(dmarcResultName(DmarcResult::kFail), "fail");
  EXPECT_STREQ(dmarcResultName(DmarcResult::kTempError), "temperror");
  EXPECT_STREQ(dmarcResultName(DmarcResult::kPermError), "permerror");
}

TEST(DmarcOrgDomain, Table) {
  const std::pair<const char*, const char*> cases[] = {
      {"example.com", "example.com"},
      {"mail.example.com", "example.com"},
      {"a.b.c.example.com", "example.com"},
      {"Mail.Example.COM.", "example.com"},
      {"example.co.uk", "example.co.uk"},
      {"mail.example.co.uk", "example.co.uk"},
      {"co.uk", "co.uk"},                              // a public suffix: itself
      {"a.b.example.test", "example.test"},            // unlisted TLD: the default rule "*"
      {"x.y.city.kawasaki.jp", "city.kawasaki.jp"},    // exception rule "!city.kawasaki.jp"
      {"x.foo.bar.kawasaki.jp", "foo.bar.kawasaki.jp"},   // wildcard rule "*.kawasaki.jp"
      {"www.xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"},   // IDN in A-labels (.рф)
      {"localhost", "localhost"},                      // single label
      {"", ""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(organizationalDomain(in), want) << in;
}

// ---- checkDmarc ----

DkimVerdict dkim(const char* d, DkimResult r = DkimResult::kPass) {
  DkimVerdict v;
  v.result = r;
  v.domain = d;
  v.selector = "sel";
  return v;
}

struct CheckCase {
  const char* name;
  const char* from;
  SpfResult spf;
  const char* spf_domain;
  std::vector<DkimVerdict> dkim;
  DmarcResult result;
  DmarcPolicy policy;
  DmarcPolicy disposition;
  bool spf_aligned, dkim_aligned;
  uint32_t roll = 0;
};

StaticDns zone() {
  StaticDns d;
  d.txt_records["_dmarc.relaxed.example"] = {"v=DMARC1; p=reject"};
  d.txt_records["_dmarc.strict.example"] = {"v=DMARC1; p=reject; adkim=s; aspf=s"};
  d.txt_records["_dmarc.sub.example"] = {"v=DMARC1; p=quarantine; sp=reject"};
  d.txt_records["_dmarc.nosp.example"] = {"v=DMARC1; p=quarantine"};
  d.txt_records["_dmarc.own.sub.example"] = {"v=DMARC1; p=none; sp=reject"};
  d.txt_records["_dmarc.pct.example"] = {"v=DMARC1; p=reject; pct=30"};
  d.txt_records["_dmarc.pctq.example"] = {"v=DMARC1; p=quarantine; pct=30"};
  d.txt_records["_dmarc.pct0.example"] = {"v=DMARC1; p=reject; pct=0"};
  d.txt_records["_dmarc.example.co.uk"] = {"v=DMARC1; p=reject"};
  d.txt_records["_dmarc.other.example"] = {"v=spf1 -all", "some text", "v=DMARC1; p=reject"};
  d.txt_records["_dmarc.two.example"] = {"v=DMARC1; p=reject", "v=DMARC1; p=none"};
  d.txt_records["_dmarc.sub.two.example"] = {"not dmarc"};
  d.txt_records["_dmarc.bad.example"] = {"v=DMARC1; p=bogus"};
  d.txt_records["_dmarc.ruaonly.example"] = {"v=DMARC1; rua=mailto:r@ruaonly.example"};
  d.txt_records["_dmarc.a.multi.example"] = {"v=DMARC1; p=none"};
  d.txt_records["_dmarc.multi.example"] = {"v=DMARC1; p=reject"};
  d.tempfail = {"_dmarc.tempfail.example", "_dmarc.orgtemp.example"};
  return d;
}

using R = DmarcResult;
using P = DmarcPolicy;
using S = SpfResult;

std::vector<CheckCase> checkCases() {
  return {
      // Relaxed alignment (§3.1: same organizational domain).
      {"spf exact", "relaxed.example", S::kPass, "relaxed.example", {}, R::kPass, P::kReject, P::kNone, true, false},
      {"spf subdomain relaxed", "relaxed.example", S::kPass, "bounce.relaxed.example", {}, R::kPass, P::kReject,
       P::kNone, true, false},
      {"spf from subdomain relaxed", "news.relaxed.example", S::kPass, "relaxed.example", {}, R::kPass, P::kReject,
       P::kNone, true, false},
      {"spf other org", "relaxed.example", S::kPass, "other.example", {}, R::kFail, P::kReject, P::kReject, false,
       false},
      {"spf softfail is not pass", "relaxed.example", S::kSoftFail, "relaxed.example", {}, R::kFail, P::kReject,
       P::kReject, false, false},
      {"spf neutral", "relaxed.example", S::kNeutral, "relaxed.example", {}, R::kFail, P::kReject, P::kReject, false,
       false},
      {"dkim exact", "relaxed.example", S::kNone, "", {dkim("relaxed.example")}, R::kPass, P::kReject, P::kNone,
       false, true},
      {"dkim subdomain relaxed", "relaxed.example", S::kFail, "x.example", {dkim("mail.relaxed.example")}, R::kPass,
       P::kReject, P::kNone, false, true},
      {"dkim case", "relaxed.example", S::kNone, "", {dkim("RELAXED.Example")}, R::kPass, P::kReject, P::kNone, false,
       true},
      {"dkim fail", "relaxed.example", S::kNone, "", {dkim("relaxed.example", DkimResult::kFail)}, R::kFail,
       P::kReject, P::kReject, false, false},
      {"dkim other then aligned", "relaxed.example", S::kNone, "",
       {dkim("other.example"), dkim("relaxed.example")}, R::kPass, P::kReject, P::kNone, false, true},
      {"dkim unaligned pass", "relaxed.example", S::kNone, "", {dkim("other.example")}, R::kFail, P::kReject,
       P::kReject, false, false},
      {"both aligned", "relaxed.example", S::kPass, "relaxed.example", {dkim("relaxed.example")}, R::kPass,
       P::kReject, P::kNone, true, true},
      {"suffix lookalike", "relaxed.example", S::kPass, "xrelaxed.example", {dkim("xrelaxed.example")}, R::kFail,
       P::kReject, P::kReject, false, false},
      // Strict alignment: equal names only.
      {"strict spf exact", "strict.example", S::kPass, "strict.example", {}, R::kPass, P::kReject, P::kNone, true,
       false},
      {"strict spf subdomain", "strict.example", S::kPass, "bounce.strict.example", {}, R::kFail, P::kReject,
       P::kReject, false, false},
      {"strict dkim exact", "strict.example", S::kNone, "", {dkim("strict.example")}, R::kPass, P::kReject, P::kNone,
       false, true},
      {"strict dkim subdomain", "strict.example", S::kNone, "", {dkim("mail.strict.example")}, R::kFail, P::kReject,
       P::kReject, false, false},
      // Strict record at the org domain, From a subdomain: strict compares with the From domain.
      {"strict from subdomain, spf org", "a.strict.example", S::kPass, "strict.example", {}, R::kFail, P::kReject,
       P::kReject, false, false},
      {"strict from subdomain, dkim same", "a.strict.example", S::kNone, "", {dkim("a.strict.example")}, R::kPass,
       P::kReject, P::kNone, false, true},
      // sp= for subdomains when the record is the org domain's.
      {"sp applies to subdomain", "x.sub.example", S::kFail, "x.sub.example", {}, R::kFail, P::kReject, P::kReject,
       false, false},
      {"p applies to org itself", "sub.example", S::kFail, "sub.example", {}, R::kFail, P::kQuarantine,
       P::kQuarantine, false, false},
      {"no sp: p for subdomain", "x.nosp.example", S::kFail, "x.nosp.example", {}, R::kFail, P::kQuarantine,
       P::kQuarantine, false, false},
      {"subdomain's own record: its p", "own.sub.example", S::kFail, "own.sub.example", {}, R::kFail, P::kNone,
       P::kNone, false, false},
      // pct= sampling (§6.3): outside the sample, the next less strict policy.
      {"pct inside", "pct.example", S::kFail, "pct.example", {}, R::kFail, P::kReject, P::kReject, false, false, 29},
      {"pct outside", "pct.example", S::kFail, "pct.example", {}, R::kFail, P::kReject, P::kQuarantine, false, false,
       30},
      {"pct quarantine outside", "pctq.example", S::kFail, "pctq.example", {}, R::kFail, P::kQuarantine, P::kNone,
       false, false, 99},
      {"pct quarantine inside", "pctq.example", S::kFail, "pctq.example", {}, R::kFail, P::kQuarantine,
       P::kQuarantine, false, false, 0},
      {"pct 0", "pct0.example", S::kFail, "pct0.example", {}, R::kFail, P::kReject, P::kQuarantine, false, false, 0},
      {"pct pass unaffected", "pct.example", S::kPass, "pct.example", {}, R::kPass, P::kReject, P::kNone, true, false,
       99},
      // Policy discovery (§6.6.3).
      {"co.uk org record", "mail.example.co.uk", S::kPass, "example.co.uk", {}, R::kPass, P::kReject, P::kNone, true,
       false},
      {"co.uk other org", "example.co.uk", S::kPass, "other.co.uk", {}, R::kFail, P::kReject, P::kReject, false,
       false},
      {"non-DMARC TXT ignored", "other.example", S::kFail, "", {}, R::kFail, P::kReject, P::kReject, false, false},
      {"two records: none", "two.example", S::kFail, "", {}, R::kNone, P::kNone, P::kNone, false, false},
      {"sub with only junk falls back to org (two)", "sub.two.example", S::kFail, "", {}, R::kNone, P::kNone,
       P::kNone, false, false},
      {"no record", "norecord.example", S::kPass, "norecord.example", {}, R::kNone, P::kNone, P::kNone, false,
       false},
      {"bad record: permerror", "bad.example", S::kPass, "bad.example", {}, R::kPermError, P::kNone, P::kNone, false,
       false},
      {"rua only: p=none", "ruaonly.example", S::kFail, "", {}, R::kFail, P::kNone, P::kNone, false, false},
      {"subdomain record wins over org", "a.multi.example", S::kFail, "", {}, R::kFail, P::kNone, P::kNone, false,
       false},
      {"org record for deeper subdomain", "b.multi.example", S::kFail, "", {}, R::kFail, P::kReject, P::kReject,
       false, false},
      {"temperror", "tempfail.example", S::kPass, "tempfail.example", {}, R::kTempError, P::kNone, P::kNone, false,
       false},
      {"temperror at org", "x.orgtemp.example", S::kPass, "orgtemp.example", {}, R::kTempError, P::kNone, P::kNone,
       false, false},
      {"From missing", "", S::kPass, "relaxed.example", {}, R::kNone, P::kNone, P::kNone, false, false},
      {"From upper case, trailing dot", "Relaxed.EXAMPLE.", S::kPass, "relaxed.example", {}, R::kPass, P::kReject,
       P::kNone, true, false},
  };
}

TEST(DmarcCheck, Table) {
  for (const CheckCase& c : checkCases()) {
    SCOPED_TRACE(c.name);
    StaticDns dns = zone();
    DmarcInput in;
    in.header_from = c.from;
    in.spf = c.spf;
    in.spf_domain = c.spf_domain;
    in.dkim = c.dkim;
    in.pct_roll = c.roll;
    DmarcVerdict v = test::runSync(checkDmarc(dns, in));
    EXPECT_EQ(dmarcResultName(v.result), std::string(dmarcResultName(c.result))) << v.reason;
    EXPECT_EQ(dmarcPolicyName(v.policy), std::string(dmarcPolicyName(c.policy)));
    EXPECT_EQ(dmarcPolicyName(v.disposition), std::string(dmarcPolicyName(c.disposition)));
    EXPECT_EQ(v.spf_aligned, c.spf_aligned);
    EXPECT_EQ(v.dkim_aligned, c.dkim_aligned);
    if (c.result != R::kPass) {
      EXPECT_FALSE(v.reason.empty());
    }
  }
}

TEST(DmarcCheck, LookupOrderAndReasons) {
  StaticDns dns = zone();
  DmarcInput in;
  in.header_from = "deep.x.relaxed.example";
  DmarcVerdict v = test::runSync(checkDmarc(dns, in));
  EXPECT_EQ(v.header_from, "deep.x.relaxed.example");
  EXPECT_EQ(v.result, R::kFail);
  EXPECT_EQ(dns.lookups, 2u);   // the From domain, then the org domain; no tree walk

  StaticDns dns2 = zone();
  in.header_from = "relaxed.example";
  test::runSync(checkDmarc(dns2, in));
  EXPECT_EQ(dns2.lookups, 1u);   // From domain = org domain: one lookup

  StaticDns dns3 = zone();
  in.header_from = "two.example";
  v = test::runSync(checkDmarc(dns3, in));
  EXPECT_EQ(v.reason, "multiple records");
  EXPECT_EQ(dns3.lookups, 1u);   // multiple at the From domain: no fallback (§6.6.3 step 5)

  StaticDns dns4 = zone();
  in.header_from = "tempfail.example";
  v = test::runSync(checkDmarc(dns4, in));
  EXPECT_EQ(v.reason, "DNS: timeout");

  StaticDns dns5 = zone();
  in.header_from = "nothing.example";
  v = test::runSync(checkDmarc(dns5, in));
  EXPECT_EQ(v.reason, "no record");
}

}  // namespace
