// Authentication-Results (RFC 8601): the field Postern writes (golden strings) and the search
// for fields that claim our authserv-id (§5).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "auth/results.h"
#include "auth/verifier.h"

using namespace postern;
using namespace postern::auth;

namespace {

DkimVerdict dkim(DkimResult r, const char* d, const char* s, const char* b, const char* reason = "") {
  DkimVerdict v;
  v.result = r;
  v.domain = d;
  v.selector = s;
  v.b_prefix = b;
  v.reason = reason;
  return v;
}

Report full() {
  Report r;
  r.spf_checked = true;
  r.spf.result = SpfResult::kPass;
  r.spf.domain = "example.org";
  r.mail_from = "bounce@example.org";
  r.helo = "mail.example.org";
  r.dkim_checked = true;
  r.dkim = {dkim(DkimResult::kPass, "example.org", "sel1", "AbCdEfGh")};
  r.dmarc_checked = true;
  r.dmarc.result = DmarcResult::kPass;
  r.dmarc.policy = DmarcPolicy::kReject;
  r.dmarc.header_from = "example.org";
  r.arc_checked = true;
  return r;
}

TEST(AuthResults, Golden) {
  EXPECT_EQ(authenticationResults("mx.test", full()),
            "Authentication-Results: mx.test;\r\n"
            "\tspf=pass smtp.mailfrom=bounce@example.org;\r\n"
            "\tdkim=pass header.d=example.org header.s=sel1 header.b=AbCdEfGh;\r\n"
            "\tdmarc=pass (p=reject dis=none) header.from=example.org;\r\n"
            "\tarc=none\r\n");
}

TEST(AuthResults, NothingChecked) {
  EXPECT_EQ(authenticationResults("mx.test", Report{}), "Authentication-Results: mx.test; none\r\n");
}

TEST(AuthResults, FailuresReasonsAndQuoting) {
  Report r;
  r.spf_checked = true;
  r.spf.result = SpfResult::kTempError;
  r.spf.problem = "DNS timeout for example.org";
  r.mail_from = "";   // null reverse-path: the HELO identity
  r.helo = "mail.example.org";
  r.dkim_checked = true;
  r.dkim = {dkim(DkimResult::kFail, "example.org", "s", "ab/cd+ef==xyz", "body hash mismatch"),
            dkim(DkimResult::kPass, "lists.example.net", "k1", "12345678")};
  r.dmarc_checked = true;
  r.dmarc.result = DmarcResult::kFail;
  r.dmarc.policy = DmarcPolicy::kReject;
  r.dmarc.disposition = DmarcPolicy::kQuarantine;
  r.dmarc.reason = "no aligned SPF or DKIM pass; outside pct=50";
  r.dmarc.header_from = "example.org";
  r.arc_checked = true;
  r.arc.result = ArcResult::kFail;
  r.arc.reason = "AS i=2 \"signature\" mismatch";
  EXPECT_EQ(authenticationResults("mx.test", r),
            "Authentication-Results: mx.test;\r\n"
            "\tspf=temperror reason=\"DNS timeout for example.org\" smtp.helo=mail.example.org;\r\n"
            "\tdkim=fail reason=\"body hash mismatch\" header.d=example.org header.s=s\r\n"
            "\theader.b=\"ab/cd+ef\";\r\n"
            "\tdkim=pass header.d=lists.example.net header.s=k1 header.b=12345678;\r\n"
            "\tdmarc=fail (p=reject dis=quarantine)\r\n"
            "\treason=\"no aligned SPF or DKIM pass; outside pct=50\" header.from=example.org;\r\n"
            "\tarc=fail reason=\"AS i=2 \\\"signature\\\" mismatch\"\r\n");
}

TEST(AuthResults, DkimNoneAndDmarcNone) {
  Report r;
  r.dkim_checked = true;
  r.dmarc_checked = true;
  r.dmarc.reason = "no record";
  r.dmarc.header_from = "example.org";
  EXPECT_EQ(authenticationResults("MX.Test", r),
            "Authentication-Results: MX.Test;\r\n"
            "\tdkim=none;\r\n"
            "\tdmarc=none reason=\"no record\" header.from=example.org\r\n");
}

// The method results under their RFC 8601 §2.7 / RFC 8617 names.
TEST(AuthResults, ResultNames) {
  const std::pair<DkimResult, const char*> dkims[] = {
      {DkimResult::kNone, "none"},       {DkimResult::kPass, "pass"},           {DkimResult::kFail, "fail"},
      {DkimResult::kNeutral, "neutral"}, {DkimResult::kPolicy, "policy"},       {DkimResult::kTempError, "temperror"},
      {DkimResult::kPermError, "permerror"}};
  for (auto [res, name] : dkims) {
    Report r;
    r.dkim_checked = true;
    r.dkim = {dkim(res, "example.org", "s", "")};
    EXPECT_NE(authenticationResults("mx.test", r).find(std::string("\tdkim=") + name + " "), std::string::npos) << name;
  }
  const std::pair<ArcResult, const char*> arcs[] = {
      {ArcResult::kNone, "none"}, {ArcResult::kPass, "pass"}, {ArcResult::kFail, "fail"}};
  for (auto [res, name] : arcs) {
    Report r;
    r.arc_checked = true;
    r.arc.result = res;
    EXPECT_EQ(authenticationResults("mx.test", r), std::string("Authentication-Results: mx.test;\r\n\tarc=") + name + "\r\n");
  }
  const std::pair<DmarcResult, const char*> dmarcs[] = {
      {DmarcResult::kNone, "none"}, {DmarcResult::kPass, "pass"}, {DmarcResult::kFail, "fail"},
      {DmarcResult::kTempError, "temperror"}, {DmarcResult::kPermError, "permerror"}};
  for (auto [res, name] : dmarcs) {
    Report r;
    r.dmarc_checked = true;
    r.dmarc.result = res;
    EXPECT_NE(authenticationResults("mx.test", r).find(std::string("\tdmarc=") + name), std::string::npos) << name;
  }
}

TEST(AuthResults, AddressesAndOddValues) {
  Report r;
  r.spf_checked = true;
  r.spf.result = SpfResult::kFail;
  r.mail_from = "\"odd local\"@example.org";
  std::string out = authenticationResults("mx.test", r);
  EXPECT_EQ(out,
            "Authentication-Results: mx.test;\r\n"
            "\tspf=fail smtp.mailfrom=\"\\\"odd local\\\"@example.org\"\r\n");

  r.mail_from = "a.b+tag@sub.example.org";
  EXPECT_NE(authenticationResults("mx.test", r).find(" smtp.mailfrom=a.b+tag@sub.example.org\r\n"), std::string::npos);

  // CR and LF never reach the header; other controls neither.
  r.mail_from = "x@y\r\nX-Injected: 1";
  out = authenticationResults("mx.test", r);
  EXPECT_EQ(out.find("\r\nX-Injected"), std::string::npos);
  EXPECT_NE(out.find("smtp.mailfrom=\"x@y??X-Injected: 1\""), std::string::npos);
}

// Every line (without CRLF) is within 998 octets and continuation lines start with a tab,
// whatever the lengths of the values.
TEST(AuthResults, LineLimits) {
  Report r = full();
  r.mail_from = std::string(2000, 'a') + "@example.org";
  r.dmarc.reason = std::string(3000, 'r');
  r.dkim.push_back(dkim(DkimResult::kFail, std::string(300, 'd').c_str(), std::string(300, 's').c_str(), "x"));
  std::string out = authenticationResults(std::string(500, 'm'), r);
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out.substr(out.size() - 2), "\r\n");
  size_t start = 0, lines = 0;
  while (start < out.size()) {
    size_t crlf = out.find("\r\n", start);
    ASSERT_NE(crlf, std::string::npos);
    EXPECT_LE(crlf - start, kArMaxLineOctets);
    if (lines > 0) {
      EXPECT_EQ(out[start], '\t');
    }
    EXPECT_EQ(out.find('\n', start), crlf + 1);   // no bare LF
    ++lines;
    start = crlf + 2;
  }
  EXPECT_GT(lines, 5u);
}

// ---- ownResultsFields ----

std::vector<std::string> fields(std::string_view msg, std::string_view id) {
  std::vector<std::string> out;
  for (auto [b, e] : ownResultsFields(msg, id)) out.emplace_back(msg.substr(b, e - b));
  return out;
}

using V = std::vector<std::string>;

TEST(AuthResults, OwnFieldsTable) {
  struct Case {
    const char* name;
    std::string msg;
    V want;
  };
  const std::string body = "\r\nbody\r\nAuthentication-Results: mx.test; spf=pass\r\n";
  const Case cases[] = {
      {"plain", "Authentication-Results: mx.test; spf=pass\r\nSubject: x\r\n" + body,
       V{"Authentication-Results: mx.test; spf=pass\r\n"}},
      {"mixed case name and id", "authentication-RESULTS: MX.TEST; dkim=pass\r\n" + body,
       V{"authentication-RESULTS: MX.TEST; dkim=pass\r\n"}},
      {"folded", "Subject: x\r\nAuthentication-Results:\r\n\tmx.test;\r\n\tspf=pass\r\n  dkim=fail\r\nTo: y\r\n" + body,
       V{"Authentication-Results:\r\n\tmx.test;\r\n\tspf=pass\r\n  dkim=fail\r\n"}},
      {"comment before id", "Authentication-Results: (from (nested) \\) x) mx.test 1; none\r\n" + body,
       V{"Authentication-Results: (from (nested) \\) x) mx.test 1; none\r\n"}},
      {"comment right after id", "Authentication-Results: mx.test(c); none\r\n" + body,
       V{"Authentication-Results: mx.test(c); none\r\n"}},
      {"quoted id", "Authentication-Results: \"mx.test\"; none\r\n" + body,
       V{"Authentication-Results: \"mx.test\"; none\r\n"}},
      {"version", "Authentication-Results: mx.test 1; spf=pass\r\n" + body,
       V{"Authentication-Results: mx.test 1; spf=pass\r\n"}},
      {"space before colon", "Authentication-Results : mx.test; none\r\n" + body,
       V{"Authentication-Results : mx.test; none\r\n"}},
      {"other ids kept",
       "Authentication-Results: mx.test.evil; none\r\nAuthentication-Results: other.example; spf=pass\r\n"
       "Authentication-Results: mx; none\r\nX-Authentication-Results: mx.test; none\r\n"
       "Authentication-Results-X: mx.test; none\r\n" + body,
       V{}},
      {"several of ours", "Authentication-Results: mx.test; a=b\r\nX: y\r\nAuthentication-Results: Mx.Test; c=d\r\n" + body,
       V{"Authentication-Results: mx.test; a=b\r\n", "Authentication-Results: Mx.Test; c=d\r\n"}},
      {"LF only", "Authentication-Results: mx.test; none\nSubject: x\n\nAuthentication-Results: mx.test; none\n",
       V{"Authentication-Results: mx.test; none\n"}},
      {"no body, no final newline", "Subject: x\r\nAuthentication-Results: mx.test; none",
       V{"Authentication-Results: mx.test; none"}},
      {"in body only", "Subject: x\r\n" + body, V{}},
      {"unterminated comment", "Authentication-Results: (mx.test; none\r\n" + body, V{}},
      {"empty value", "Authentication-Results:\r\n" + body, V{}},
      {"leading continuation line", "\tAuthentication-Results: mx.test; none\r\nSubject: x\r\n" + body, V{}},
  };
  for (const Case& c : cases) EXPECT_EQ(fields(c.msg, "mx.test"), c.want) << c.name;
}

TEST(AuthResults, OwnFieldsOffsets) {
  std::string msg = "A: 1\r\nAuthentication-Results: mx.test; none\r\nB: 2\r\n\r\n";
  auto r = ownResultsFields(msg, "mx.test");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, 6u);
  EXPECT_EQ(r[0].second, msg.find("B: 2"));
  EXPECT_TRUE(ownResultsFields(msg, "").empty());
  EXPECT_TRUE(ownResultsFields("", "mx.test").empty());
}

// Deep comment nesting stops the scan of that field (bounded), not the scan of the header.
TEST(AuthResults, OwnFieldsDeepComments) {
  std::string deep = "Authentication-Results: " + std::string(10000, '(') + "mx.test; none\r\n";
  std::string msg = deep + "Authentication-Results: mx.test; none\r\n\r\n";
  auto r = ownResultsFields(msg, "mx.test");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, deep.size());
}

}  // namespace

namespace postern::auth {
namespace {

// The field goes on top; fields of our id go (folded ones whole), other ids stay; the
// in-place form gives the same bytes as the copying one.
TEST(AuthResultsPut, OwnFieldsReplacedOthersKept) {
  const std::string field = "Authentication-Results: mx.example; spf=pass\r\n";
  const std::string in =
      "Received: from x\r\n"
      "Authentication-Results: MX.example; dkim=pass\r\n\theader.d=a.example\r\n"
      "Authentication-Results: other.example; spf=fail\r\n"
      "Subject: s\r\n\r\nAuthentication-Results: mx.example; in the body\r\n";
  const std::string want =
      field + "Received: from x\r\nAuthentication-Results: other.example; spf=fail\r\nSubject: s\r\n\r\n"
              "Authentication-Results: mx.example; in the body\r\n";
  EXPECT_EQ(withResults(in, "mx.example", field), want);
  std::string inplace = in;
  putResults(inplace, "mx.example", field);
  EXPECT_EQ(inplace, want);
  std::string none = "Subject: s\r\n\r\nbody\r\n";
  putResults(none, "mx.example", field);
  EXPECT_EQ(none, field + "Subject: s\r\n\r\nbody\r\n");
}

}  // namespace
}  // namespace postern::auth
