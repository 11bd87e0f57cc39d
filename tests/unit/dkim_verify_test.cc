// Tests for DKIM verification (auth/dkim_verify.h: RFC 6376 §3.2 tag lists, §3.5 signature
// fields, §3.6.1 key records, §6.1 verification; RFC 8463; RFC 8301) and ARC validation
// (auth/arc.h, RFC 8617 §5.2) over auth::StaticDns.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "auth/arc.h"
#include "auth/dkim_internal.h"
#include "auth/dkim_verify.h"
#include "dkim/canon.h"
#include "dkim/signer.h"
#include "run_sync.h"
#include "util/base64.h"

namespace postern::auth {
namespace {

using test::runSync;

// ---------------------------------------------------------------------------------------
// Parsers

struct TagCase {
  const char* name;
  std::string text;
  bool ok;
  std::string expect;   // ok: "k=v|k=v"; error: a substring of the reason
};

const TagCase kTagCases[] = {
    {"simple", "a=1; b=2", true, "a=1|b=2"},
    {"trailing_semicolon", "a=1; b=2;", true, "a=1|b=2"},
    {"trailing_semicolon_and_fws", "a=1;\r\n\t", true, "a=1"},
    {"fws_everywhere", " a \t= \r\n 1 ;\r\n b=x y ", true, "a=1|b=x y"},
    {"empty_value", "a=; b=2", true, "a=|b=2"},
    {"underscore_and_digits_in_name", "a_1=v", true, "a_1=v"},
    {"case_sensitive_names", "A=1; a=2", true, "A=1|a=2"},
    {"value_with_equals", "b=abc==", true, "b=abc=="},
    {"duplicate", "a=1; a=2", false, "duplicate tag a="},
    {"empty_list", "", false, "empty tag list"},
    {"only_fws", "  ", false, "empty tag list"},
    {"double_semicolon", "a=1;; b=2", false, "empty tag-spec"},
    {"leading_semicolon", ";a=1", false, "empty tag-spec"},
    {"no_equals", "a=1; b", false, "without ="},
    {"name_starts_with_digit", "1a=1", false, "invalid tag name"},
    {"name_with_dash", "a-b=1", false, "invalid tag name"},
    {"empty_name", "=1", false, "invalid tag name"},
    {"bare_lf", "a=1\nb=2", false, "outside folding"},
    {"crlf_without_wsp", "a=1;\r\nb=2", false, "outside folding"},
    {"nul", std::string("a=\0", 3), false, "control character"},
    {"too_long", "a=" + std::string(kDkimMaxTagListBytes, 'x'), false, "longer than"},
};

class DkimVerifyTagList : public testing::TestWithParam<TagCase> {};

TEST_P(DkimVerifyTagList, Parse) {
  const TagCase& c = GetParam();
  auto r = parseTagList(c.text);
  ASSERT_EQ(r.isOk(), c.ok) << (r ? "" : r.status().message());
  if (!c.ok) {
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
    return;
  }
  std::string flat;
  for (const auto& [k, v] : *r) flat += (flat.empty() ? "" : "|") + k + "=" + v;
  EXPECT_EQ(flat, c.expect);
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimVerifyTagList, testing::ValuesIn(kTagCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DkimVerifyTagList, TagCountLimit) {
  std::string many;
  for (size_t i = 0; i <= kDkimMaxTags; ++i) {   // (one append at a time: g++ 12 -Wrestrict false positive)
    many += 't';
    many += std::to_string(i);
    many += "=x;";
  }
  auto r = parseTagList(many);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("more than"), std::string::npos);
}

const std::string kSigBase = "a=rsa-sha256; d=Example.COM; s=sel; h=From:To; bh=YWJj; b=ZGVm";

struct SigCase {
  const char* name;
  std::string value;
  std::string error;   // empty: parses
};

const SigCase kSigCases[] = {
    {"minimal", "v=1; " + kSigBase, ""},
    {"all_tags", "v=1; " + kSigBase + "; c=relaxed; i=joe@mail.example.com; l=10; q=dns/txt; t=100; x=200; z=ignored; future=ok", ""},
    {"folded_b_and_h", "v=1; a=rsa-sha256; d=example.com; s=sel; h=from :\r\n\tto; bh=YW\r\n Jj; b=ZG\r\n\tVm", ""},
    {"missing_v", kSigBase, "missing required tag v="},
    {"v_2", "v=2; " + kSigBase, "v= is not 1"},
    {"missing_bh", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; b=ZGVm", "missing required tag bh="},
    {"missing_b", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=ZGVm", "missing required tag b="},
    {"missing_d", "v=1; a=rsa-sha256; s=sel; h=From; bh=ZGVm; b=ZGVm", "missing required tag d="},
    {"missing_s", "v=1; a=rsa-sha256; d=example.com; h=From; bh=ZGVm; b=ZGVm", "missing required tag s="},
    {"missing_h", "v=1; a=rsa-sha256; d=example.com; s=sel; bh=ZGVm; b=ZGVm", "missing required tag h="},
    {"missing_a", "v=1; d=example.com; s=sel; h=From; bh=ZGVm; b=ZGVm", "missing required tag a="},
    {"unknown_algorithm", "v=1; a=rsa-md5; d=example.com; s=sel; h=From; bh=ZGVm; b=ZGVm", "unknown algorithm"},
    {"h_without_from", "v=1; a=rsa-sha256; d=example.com; s=sel; h=To:Subject; bh=ZGVm; b=ZGVm",
     "h= does not include From"},
    {"h_empty_name", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From::To; bh=ZGVm; b=ZGVm", "invalid field name"},
    {"i_other_domain", "v=1; " + kSigBase + "; i=joe@example.net", "i= is not in d="},
    {"i_suffix_not_subdomain", "v=1; " + kSigBase + "; i=joe@badexample.com", "i= is not in d="},
    {"i_without_at", "v=1; " + kSigBase + "; i=example.com", "i= has no @"},
    {"bad_canon", "v=1; " + kSigBase + "; c=relaxed/loose", "c= is not simple or relaxed"},
    {"l_not_number", "v=1; " + kSigBase + "; l=12a", "l= is not a number"},
    {"l_overflow", "v=1; " + kSigBase + "; l=99999999999999999999999", "l= is too large"},
    {"q_other", "v=1; " + kSigBase + "; q=http/well-known", "q= does not offer dns/txt"},
    {"t_13_digits", "v=1; " + kSigBase + "; t=1234567890123", "t= is not a number"},
    {"x_before_t", "v=1; " + kSigBase + "; t=200; x=200", "x= is not after t="},
    {"b_not_base64", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=ZGVm; b=ZG!m", "b= is not base64"},
    {"bh_bad_length", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=ZGV; b=ZGVm", "bh= is not base64"},
    {"b_data_after_padding", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=ZGVm; b=Z=Vm", "b= is not base64"},
    {"b_empty", "v=1; a=rsa-sha256; d=example.com; s=sel; h=From; bh=ZGVm; b=", "b= is empty"},
    {"d_not_domain", "v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=From; bh=ZGVm; b=ZGVm", "d= is not a domain"},
    {"d_double_dot", "v=1; a=rsa-sha256; d=example..com; s=sel; h=From; bh=ZGVm; b=ZGVm", "d= is not a domain"},
    {"duplicate_tag", "v=1; " + kSigBase + "; d=example.org", "duplicate tag d="},
};

class DkimVerifySignature : public testing::TestWithParam<SigCase> {};

TEST_P(DkimVerifySignature, Parse) {
  const SigCase& c = GetParam();
  auto r = parseDkimSignature(c.value);
  if (c.error.empty()) {
    EXPECT_TRUE(r) << r.status().message();
  } else {
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimVerifySignature, testing::ValuesIn(kSigCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DkimVerifySignature, Values) {
  auto r = parseDkimSignature("v=1; a=ed25519-sha256; c=relaxed; d=Example.COM; s=sel; h=from : To :\r\n Subject; "
                              "bh=YW\r\n Jj; b=ZG Vm; l=7; t=100; x=200");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->algorithm, DkimAlgorithm::kEd25519Sha256);
  EXPECT_TRUE(r->header_relaxed);
  EXPECT_FALSE(r->body_relaxed);   // c=relaxed is relaxed/simple
  EXPECT_EQ(r->domain, "example.com");
  EXPECT_EQ(r->selector, "sel");
  EXPECT_EQ(r->signed_headers, (std::vector<std::string>{"from", "To", "Subject"}));
  EXPECT_EQ(r->identity, "@example.com");   // default i=
  EXPECT_EQ(r->bh, "YWJj");
  EXPECT_EQ(r->b, "ZGVm");
  EXPECT_EQ(r->length, 7u);
  EXPECT_EQ(r->timestamp, 100);
  EXPECT_EQ(r->expiration, 200);

  auto s = parseDkimSignature("v=1; " + kSigBase);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->header_relaxed);   // no c=: simple/simple
  EXPECT_FALSE(s->body_relaxed);
  EXPECT_FALSE(s->length.has_value());
  auto sub = parseDkimSignature("v=1; " + kSigBase + "; i=@Mail.Example.com");
  ASSERT_TRUE(sub) << sub.status().message();
  EXPECT_EQ(sub->identity, "@Mail.Example.com");
}

TEST(DkimVerifySignature, ArcMessageSignature) {
  auto r = parseArcMessageSignature("i=3; a=rsa-sha256; d=example.com; s=sel; h=To:Subject; bh=YWJj; b=ZGVm");
  ASSERT_TRUE(r) << r.status().message();   // From need not be signed, no v=
  EXPECT_EQ(r->instance, 3);
  EXPECT_FALSE(parseArcMessageSignature("a=rsa-sha256; d=example.com; s=sel; h=From; bh=YWJj; b=ZGVm"));
  EXPECT_FALSE(parseArcMessageSignature("i=51; a=rsa-sha256; d=example.com; s=sel; h=From; bh=YWJj; b=ZGVm"));
  EXPECT_FALSE(parseArcMessageSignature("i=0; a=rsa-sha256; d=example.com; s=sel; h=From; bh=YWJj; b=ZGVm"));
  auto seal_signed = parseArcMessageSignature("i=1; a=rsa-sha256; d=example.com; s=sel; h=From:ARC-Seal; bh=YWJj; b=ZGVm");
  ASSERT_FALSE(seal_signed);
  EXPECT_NE(seal_signed.status().message().find("ARC-Seal"), std::string::npos);

  auto seal = parseArcSeal("i=2; cv=Pass; a=rsa-sha256; d=Hop.example; s=s1; t=5; b=ZGVm");
  ASSERT_TRUE(seal) << seal.status().message();
  EXPECT_EQ(seal->instance, 2);
  EXPECT_EQ(seal->cv, ArcChainStatus::kPass);
  EXPECT_EQ(seal->domain, "hop.example");
  EXPECT_FALSE(parseArcSeal("i=2; cv=maybe; a=rsa-sha256; d=e.example; s=s1; b=ZGVm"));
  EXPECT_FALSE(parseArcSeal("i=2; a=rsa-sha256; d=e.example; s=s1; b=ZGVm"));   // no cv=
  EXPECT_FALSE(parseArcSeal("i=2; cv=none; a=rsa-sha256; d=e.example; s=s1; h=From; b=ZGVm"));

  EXPECT_EQ(parseArcResultsInstance(" i=12; mx.example; spf=pass").value(), 12);
  EXPECT_EQ(parseArcResultsInstance("i = 1 ;x").value(), 1);
  EXPECT_FALSE(parseArcResultsInstance("mx.example; i=1"));
  EXPECT_FALSE(parseArcResultsInstance("i=1"));
  EXPECT_FALSE(parseArcResultsInstance("i=99; x"));
}

struct KeyCase {
  const char* name;
  std::string txt;
  std::string error;
};

// 32 bytes, base64.
const std::string kEdP = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

const KeyCase kKeyCases[] = {
    {"rsa_default_type", "p=YWJj", ""},
    {"full", "v=DKIM1; k=ed25519; h=sha256; t=y:s; s=email; n=note; p=" + kEdP, ""},
    {"revoked", "v=DKIM1; p=", ""},
    {"unknown_tag_ignored", "v=DKIM1; x=1; p=YWJj", ""},
    {"v_not_first", "k=rsa; v=DKIM1; p=YWJj", "v= is not the first tag"},
    {"v_wrong", "v=DKIM2; p=YWJj", "v= is not DKIM1"},
    {"missing_p", "v=DKIM1; k=rsa", "missing required tag p="},
    {"unknown_k", "k=dsa; p=YWJj", "unknown key type"},
    {"p_not_base64", "p=YW*j", "p= is not base64"},
    {"ed25519_wrong_size", "k=ed25519; p=YWJj", "32-byte"},
    {"syntax", "v=DKIM1; p", "without ="},
};

class DkimVerifyKey : public testing::TestWithParam<KeyCase> {};

TEST_P(DkimVerifyKey, Parse) {
  const KeyCase& c = GetParam();
  auto r = parseDkimKey(c.txt);
  if (c.error.empty()) {
    EXPECT_TRUE(r) << r.status().message();
  } else {
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimVerifyKey, testing::ValuesIn(kKeyCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DkimVerifyKey, Values) {
  auto r = parseDkimKey("v=DKIM1; k=ED25519; h=SHA256:sha1; t=y : s : q; s=email:*; p=" + kEdP);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->key_type, "ed25519");
  EXPECT_EQ(r->hashes, (std::vector<std::string>{"sha256", "sha1"}));
  EXPECT_TRUE(r->testing);
  EXPECT_TRUE(r->strict_identity);
  EXPECT_EQ(r->services, (std::vector<std::string>{"email", "*"}));
  EXPECT_EQ(r->public_key.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(r->public_key[0]), 0xd7);   // 11qY... = d7 5a 98 ...
  auto rsa = parseDkimKey("p=YWJj");
  ASSERT_TRUE(rsa);
  EXPECT_EQ(rsa->key_type, "rsa");
  EXPECT_EQ(rsa->public_key, "abc");
  EXPECT_TRUE(parseDkimKey("p=").value().public_key.empty());   // revoked
}

TEST(DkimVerifyNames, Results) {
  EXPECT_STREQ(dkimResultName(DkimResult::kPass), "pass");
  EXPECT_STREQ(dkimResultName(DkimResult::kPermError), "permerror");
  EXPECT_STREQ(dkimResultName(DkimResult::kTempError), "temperror");
  EXPECT_STREQ(dkimResultName(DkimResult::kPolicy), "policy");
  EXPECT_STREQ(arcResultName(ArcResult::kFail), "fail");
}

// ---------------------------------------------------------------------------------------
// RFC 8463 Appendix A: the published message, keys (A.2) and signatures (A.3).

const std::string kRfc8463 =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

StaticDns rfc8463Dns() {
  StaticDns dns;
  dns.txt_records["brisbane._domainkey.football.example.com"] = {"v=DKIM1; k=ed25519; p=" + kEdP};
  dns.txt_records["test._domainkey.football.example.com"] = {
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/"
      "byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/"
      "K4w3QIDAQAB"};
  return dns;
}

std::vector<DkimVerdict> verify(StaticDns& dns, const std::string& message, DkimVerifyOptions options = {},
                                asio::thread_pool* cpu = nullptr) {
  if (options.now == 0) options.now = 1700000000;
  return runSync(verifyDkim(dns, std::make_shared<const std::string>(message), options, cpu));
}

TEST(DkimVerifyRfc8463, BothSignaturesVerify) {
  StaticDns dns = rfc8463Dns();
  auto v = verify(dns, kRfc8463);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].result, DkimResult::kPass) << v[0].reason;
  EXPECT_EQ(v[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(v[0].domain, "football.example.com");
  EXPECT_EQ(v[0].selector, "brisbane");
  EXPECT_EQ(v[0].identity, "@football.example.com");
  EXPECT_EQ(v[0].b_prefix, "/gCrinpc");
  EXPECT_EQ(v[1].result, DkimResult::kPass) << v[1].reason;
  EXPECT_EQ(v[1].algorithm, "rsa-sha256");
  EXPECT_EQ(v[1].b_prefix, "F45dVWDf");
  EXPECT_EQ(dns.lookups, 2u);
}

TEST(DkimVerifyRfc8463, TamperedHeaderAndBodyFail) {
  StaticDns dns = rfc8463Dns();
  std::string subject = kRfc8463;
  subject.replace(subject.find("dinner"), 6, "supper");
  auto v = verify(dns, subject);
  ASSERT_EQ(v.size(), 2u);
  for (const auto& d : v) {
    EXPECT_EQ(d.result, DkimResult::kFail);
    EXPECT_EQ(d.reason, "signature did not verify");
  }
  std::string body = kRfc8463;
  body.replace(body.find("hungry"), 6, "HUNGRY");
  v = verify(dns, body);
  for (const auto& d : v) {
    EXPECT_EQ(d.result, DkimResult::kFail);
    EXPECT_EQ(d.reason, "body hash mismatch");
  }
  // Relaxed canonicalization: re-folding and extra spaces in headers and body still pass.
  std::string refolded = kRfc8463;
  refolded.replace(refolded.find("Subject: Is dinner ready?"), 25, "SUBJECT:   Is dinner\r\n\tready?  ");
  refolded.replace(refolded.find("Hi.\r\n"), 5, "Hi.   \r\n");
  v = verify(dns, refolded + "\r\n\r\n");
  for (const auto& d : v) EXPECT_EQ(d.result, DkimResult::kPass) << d.reason;
}

TEST(DkimVerifyRfc8463, CpuPoolGivesTheSameResults) {
  StaticDns dns = rfc8463Dns();
  asio::thread_pool pool(1);
  auto v = verify(dns, kRfc8463, {}, &pool);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].result, DkimResult::kPass) << v[0].reason;
  EXPECT_EQ(v[1].result, DkimResult::kPass) << v[1].reason;
  std::string body = kRfc8463;
  body.replace(body.find("hungry"), 6, "HUNGRY");
  v = verify(dns, body, {}, &pool);
  EXPECT_EQ(v[0].reason, "body hash mismatch");
  // Bodies over kInlineHashMax are hashed on the pool (smaller ones inline): a body grown
  // past it takes that path and still gets the right answer.
  std::string big = std::string(kRfc8463) + std::string(dkimint::kInlineHashMax, 'x') + "\r\n";
  v = verify(dns, big, {}, &pool);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].reason, "body hash mismatch");
  EXPECT_EQ(v[1].reason, "body hash mismatch");
  pool.join();
}

TEST(DkimVerifyRfc8463, DnsFailures) {
  StaticDns tempfail = rfc8463Dns();
  tempfail.tempfail.push_back("brisbane._domainkey.football.example.com");
  auto v = verify(tempfail, kRfc8463);
  EXPECT_EQ(v[0].result, DkimResult::kTempError);
  EXPECT_NE(v[0].reason.find("temporarily"), std::string::npos) << v[0].reason;
  EXPECT_EQ(v[1].result, DkimResult::kPass);

  StaticDns missing = rfc8463Dns();
  missing.txt_records.erase("test._domainkey.football.example.com");
  v = verify(missing, kRfc8463);
  EXPECT_EQ(v[0].result, DkimResult::kPass);
  EXPECT_EQ(v[1].result, DkimResult::kPermError);
  EXPECT_EQ(v[1].reason, "no key for signature");

  StaticDns nodata = rfc8463Dns();
  nodata.txt_records["test._domainkey.football.example.com"] = {};
  v = verify(nodata, kRfc8463);
  EXPECT_EQ(v[1].result, DkimResult::kPermError);
  EXPECT_EQ(v[1].reason, "no key for signature");

  StaticDns garbage = rfc8463Dns();
  garbage.txt_records["test._domainkey.football.example.com"] = {"v=spf1 -all", "v=DKIM1; k=rsa; p=YWJj"};
  v = verify(garbage, kRfc8463);
  EXPECT_EQ(v[1].result, DkimResult::kPermError);
  EXPECT_NE(v[1].reason.find("key syntax error"), std::string::npos) << v[1].reason;

  StaticDns swapped = rfc8463Dns();   // an RSA record for the ed25519 signature
  swapped.txt_records["brisbane._domainkey.football.example.com"] = swapped.txt_records["test._domainkey.football.example.com"];
  v = verify(swapped, kRfc8463);
  EXPECT_EQ(v[0].result, DkimResult::kPermError);
  EXPECT_NE(v[0].reason.find("does not match"), std::string::npos) << v[0].reason;
}

TEST(DkimVerifyRfc8463, NoSignatureAndUnparsableHeader) {
  StaticDns dns = rfc8463Dns();
  std::string unsigned_msg = kRfc8463.substr(kRfc8463.find("From: Joe"));
  EXPECT_TRUE(verify(dns, unsigned_msg).empty());
  EXPECT_EQ(dns.lookups, 0u);
  auto v = verify(dns, "DKIM-Signature: v=1\r\nnot a header line\r\n\r\nbody\r\n");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].result, DkimResult::kPermError);
  EXPECT_TRUE(verify(dns, "not a header line\r\n\r\nbody\r\n").empty());
}

// ---------------------------------------------------------------------------------------
// Signatures made here: with Postern's signer, and field by field for the tags it does not
// write (l=, x=, i=, rsa-sha1, simple canonicalization).

const std::string kMessage =
    "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: Ann <ann@example.test>\r\nTo: bob@example.org\r\nSubject: hello there\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHi Bob.  \r\n\r\nBye.\r\n";

dkim::SigningKey makeKey(dkim::KeyType type, unsigned bits = 1024) {
  auto k = dkim::generateKey(type, bits);
  EXPECT_TRUE(k) << k.status().message();
  k->domain = "example.test";
  k->selector = "sel";
  return *k;
}

std::string rawSign(const dkim::SigningKey& key, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  size_t in_len = input.size();
  unsigned char digest[32];
  const EVP_MD* md = EVP_sha256();
  if (key.type == dkim::KeyType::kEd25519) {
    EVP_Digest(in, in_len, digest, nullptr, EVP_sha256(), nullptr);
    in = digest, in_len = 32, md = nullptr;
  }
  size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.pkey.get()), 1);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, in, in_len), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, in_len), 1);
  sig.resize(len);
  return base64Encode(sig);
}

struct Spec {
  std::string algorithm;          // a=
  std::string canon = "relaxed/relaxed";
  std::string h = "From:To:Subject";
  std::string extra;              // more tags, "; "-separated, e.g. "l=5; x=10"
  std::optional<size_t> l;        // hash only this much of the canonical body (and write l=)
};

// The DKIM-Signature field (with CRLF) for `message`, signed by `key` as `spec` says.
std::string signField(const std::string& message, const dkim::SigningKey& key, const Spec& spec) {
  auto m = dkim::splitMessage(message).value();
  bool hr = spec.canon.rfind("relaxed", 0) == 0;
  bool br = spec.canon.find("/relaxed") != std::string::npos;
  std::string body = dkim::canonicalBody(m.body, br ? dkim::Canon::kRelaxed : dkim::Canon::kSimple);
  if (spec.l) body.resize(std::min(body.size(), *spec.l));
  unsigned char bh[32];
  EVP_Digest(body.data(), body.size(), bh, nullptr, EVP_sha256(), nullptr);
  std::string alg = spec.algorithm.empty() ? std::string(dkim::algorithmName(key.type)) : spec.algorithm;
  std::string field = "DKIM-Signature: v=1; a=" + alg + "; c=" + spec.canon + "; d=" + key.domain + "; s=" +
                      key.selector + ";\r\n\th=" + spec.h + ";" + (spec.extra.empty() ? "" : " " + spec.extra + ";") +
                      (spec.l ? " l=" + std::to_string(*spec.l) + ";" : "") + "\r\n\tbh=" +
                      base64Encode(std::string_view(reinterpret_cast<char*>(bh), 32)) + "; b=";
  std::vector<std::string> h;
  for (std::string_view n : {"From", "To", "Subject"})
    if (spec.h.find(n) != std::string::npos) h.emplace_back(n);
  auto c = hr ? dkim::Canon::kRelaxed : dkim::Canon::kSimple;
  std::string self = dkim::canonicalHeader(dkim::HeaderField{"DKIM-Signature", field}, c);
  self.resize(self.size() - 2);
  std::string b = rawSign(key, dkim::headerHashInput(m, h, c) + self);
  return field + b.substr(0, 40) + "\r\n\t" + b.substr(40) + "\r\n";
}

StaticDns dnsFor(const dkim::SigningKey& key, const std::string& suffix = "") {
  StaticDns dns;
  dns.txt_records["sel._domainkey.example.test"] = {dkim::dnsTxtValue(key).value() + suffix};
  return dns;
}

class DkimVerifyPosternSigned : public testing::TestWithParam<dkim::KeyType> {};

TEST_P(DkimVerifyPosternSigned, PassesAndTamperingFails) {
  dkim::SigningKey key = makeKey(GetParam());
  auto field = dkim::signMessage(kMessage, key, 1700000000);
  ASSERT_TRUE(field) << field.status().message();
  StaticDns dns = dnsFor(key);
  auto v = verify(dns, *field + kMessage);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].result, DkimResult::kPass) << v[0].reason;
  EXPECT_EQ(v[0].domain, "example.test");
  EXPECT_EQ(v[0].selector, "sel");
  EXPECT_EQ(v[0].b_prefix.size(), 8u);

  std::string changed = *field + kMessage;
  changed.replace(changed.find("hello"), 5, "HELLO");
  v = verify(dns, changed);
  EXPECT_EQ(v[0].result, DkimResult::kFail);
  EXPECT_EQ(v[0].reason, "signature did not verify");

  changed = *field + kMessage;
  changed.replace(changed.find("Bye."), 4, "Cya.");
  v = verify(dns, changed);
  EXPECT_EQ(v[0].result, DkimResult::kFail);
  EXPECT_EQ(v[0].reason, "body hash mismatch");

  // A second From above the signed one: Postern oversigns From, so this breaks it.
  changed = *field + "From: mallory@evil.test\r\n" + kMessage;
  v = verify(dns, changed);
  EXPECT_EQ(v[0].result, DkimResult::kFail);

  // A Received: added on the way (not signed) does not matter.
  v = verify(dns, "Received: from relay by mx; Tue, 2 Jan 2024 00:00:00 +0000\r\n" + *field + kMessage);
  EXPECT_EQ(v[0].result, DkimResult::kPass) << v[0].reason;
}

INSTANTIATE_TEST_SUITE_P(Types, DkimVerifyPosternSigned, testing::Values(dkim::KeyType::kRsa, dkim::KeyType::kEd25519),
                         [](const auto& info) { return std::string(dkim::keyTypeName(info.param)); });

struct VerifyCase {
  const char* name;
  Spec spec;
  std::string append;          // appended to the message body after signing
  std::string key_suffix;      // appended to the key record ("; t=s", ...)
  bool honour_length = true;
  DkimResult result;
  std::string reason;          // a substring; empty for pass
};

const VerifyCase kVerifyCases[] = {
    {"relaxed_relaxed", {}, "", "", true, DkimResult::kPass, ""},
    {"simple_simple", {.canon = "simple/simple"}, "", "", true, DkimResult::kPass, ""},
    {"relaxed_simple", {.canon = "relaxed/simple"}, "", "", true, DkimResult::kPass, ""},
    {"simple_relaxed", {.canon = "simple/relaxed"}, "", "", true, DkimResult::kPass, ""},
    {"relaxed_header_refolded", {.canon = "relaxed/simple"}, "", "", true, DkimResult::kPass, ""},
    {"l_exact", {.l = 17}, "", "", true, DkimResult::kPass, ""},
    {"l_shorter_footer_appended", {.l = 9}, "Unsubscribe here.\r\n", "", true, DkimResult::kPass, ""},
    {"l_footer_appended_not_honoured", {.l = 9}, "Unsubscribe here.\r\n", "", false, DkimResult::kFail, "body hash mismatch"},
    {"l_not_honoured_nothing_appended", {.l = 17}, "", "", false, DkimResult::kPass, ""},
    {"l_beyond_body", {.extra = "l=500"}, "", "", true, DkimResult::kPermError, "exceeds the body length"},
    {"footer_without_l", {}, "Unsubscribe here.\r\n", "", true, DkimResult::kFail, "body hash mismatch"},
    {"expired", {.extra = "t=1600000000; x=1600000100"}, "", "", true, DkimResult::kFail, "signature expired"},
    {"not_yet_expired", {.extra = "t=1600000000; x=1800000000"}, "", "", true, DkimResult::kPass, ""},
    {"rsa_sha1", {.algorithm = "rsa-sha1"}, "", "", true, DkimResult::kPolicy, "rsa-sha1 is not accepted (RFC 8301)"},
    {"key_h_sha1_only", {}, "", "; h=sha1", true, DkimResult::kPermError, "key h= does not allow sha256"},
    {"key_h_sha256", {}, "", "; h=sha1:sha256", true, DkimResult::kPass, ""},
    {"key_service_other", {}, "", "; s=tlsrpt", true, DkimResult::kPermError, "not for email"},
    {"key_service_email", {}, "", "; s=email", true, DkimResult::kPass, ""},
    {"strict_identity_subdomain", {.extra = "i=ann@mail.example.test"}, "", "; t=s", true, DkimResult::kPermError, "t=s"},
    {"strict_identity_same_domain", {.extra = "i=ann@example.test"}, "", "; t=s", true, DkimResult::kPass, ""},
    {"subdomain_identity", {.extra = "i=@mail.example.test"}, "", "", true, DkimResult::kPass, ""},
    {"h_without_from", {.h = "To:Subject"}, "", "", true, DkimResult::kPermError, "h= does not include From"},
};

class DkimVerifyCases : public testing::TestWithParam<VerifyCase> {};

TEST_P(DkimVerifyCases, Result) {
  const VerifyCase& c = GetParam();
  static const dkim::SigningKey key = makeKey(dkim::KeyType::kRsa);
  std::string message = signField(kMessage, key, c.spec) + kMessage + c.append;
  if (std::string(c.name) == "relaxed_header_refolded") {   // relaxed header: refold Subject
    message.replace(message.find("Subject: hello there"), 20, "Subject:  hello\r\n there ");
  }
  StaticDns dns = dnsFor(key, c.key_suffix);
  DkimVerifyOptions o;
  o.honour_length = c.honour_length;
  auto v = verify(dns, message, o);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(dkimResultName(v[0].result), std::string(dkimResultName(c.result))) << v[0].reason;
  if (c.reason.empty())
    EXPECT_TRUE(v[0].reason.empty()) << v[0].reason;
  else
    EXPECT_NE(v[0].reason.find(c.reason), std::string::npos) << v[0].reason;
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimVerifyCases, testing::ValuesIn(kVerifyCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DkimVerify, SimpleBodyIsExact) {
  dkim::SigningKey key = makeKey(dkim::KeyType::kEd25519);
  std::string message = signField(kMessage, key, {.canon = "simple/simple"}) + kMessage;
  StaticDns dns = dnsFor(key);
  EXPECT_EQ(verify(dns, message)[0].result, DkimResult::kPass);
  std::string spaced = message;
  spaced.replace(spaced.find("Hi Bob.  "), 9, "Hi Bob. ");   // simple: whitespace counts
  EXPECT_EQ(verify(dns, spaced)[0].reason, "body hash mismatch");
  std::string header = message;
  header.replace(header.find("Subject: hello"), 14, "Subject:  hello");
  EXPECT_EQ(verify(dns, header)[0].reason, "signature did not verify");
}

TEST(DkimVerify, RevokedKeyFails) {
  dkim::SigningKey key = makeKey(dkim::KeyType::kRsa);
  StaticDns dns;
  dns.txt_records["sel._domainkey.example.test"] = {"v=DKIM1; k=rsa; p="};
  auto v = verify(dns, signField(kMessage, key, {}) + kMessage);
  EXPECT_EQ(v[0].result, DkimResult::kFail);
  EXPECT_EQ(v[0].reason, "key revoked");
}

TEST(DkimVerify, TestingFlagReported) {
  dkim::SigningKey key = makeKey(dkim::KeyType::kRsa);
  StaticDns dns = dnsFor(key, "; t=y");
  auto v = verify(dns, signField(kMessage, key, {}) + kMessage);
  EXPECT_EQ(v[0].result, DkimResult::kPass);
  EXPECT_TRUE(v[0].testing);
}

TEST(DkimVerify, SmallRsaKeyIsPolicy) {
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(768));
  ASSERT_NE(small, nullptr);
  dkim::SigningKey key;
  key.type = dkim::KeyType::kRsa;
  key.domain = "example.test";
  key.selector = "sel";
  key.pkey = std::shared_ptr<EVP_PKEY>(small, EVP_PKEY_free);
  StaticDns dns = dnsFor(key);
  auto v = verify(dns, signField(kMessage, key, {}) + kMessage);
  EXPECT_EQ(v[0].result, DkimResult::kPolicy);
  EXPECT_NE(v[0].reason.find("768 bits"), std::string::npos) << v[0].reason;
}

TEST(DkimVerify, SignatureLimit) {
  dkim::SigningKey key = makeKey(dkim::KeyType::kEd25519);
  std::string sig = signField(kMessage, key, {});
  StaticDns dns = dnsFor(key);
  DkimVerifyOptions o;
  o.max_signatures = 2;
  auto v = verify(dns, sig + sig + "DKIM-Signature: garbage\r\n" + kMessage, o);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].result, DkimResult::kPass);
  EXPECT_EQ(v[1].result, DkimResult::kPass);
  EXPECT_EQ(v[2].result, DkimResult::kNone);
  EXPECT_EQ(v[2].reason, "not checked (limit)");
  EXPECT_EQ(dns.lookups, 2u);
  // Unparsable signatures count too; the verdict still names what it can.
  v = verify(dns, "DKIM-Signature: v=1; d=Broken.example; s=x; b=QUJDREVGR0hJSg==\r\n" + sig + kMessage, o);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].result, DkimResult::kPermError);
  EXPECT_EQ(v[0].domain, "broken.example");
  EXPECT_EQ(v[0].b_prefix, "QUJDREVG");
  EXPECT_EQ(v[1].result, DkimResult::kPass);
}

// ---------------------------------------------------------------------------------------
// ARC: chains sealed by python3-dkim (tests/data/arc/make_fixture.py).

std::string readFile(const std::string& name) {
  std::ifstream in(std::string(POSTERN_SOURCE_DIR) + "/tests/data/arc/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

StaticDns arcDns() {
  StaticDns dns;
  std::istringstream in(readFile("dns.txt"));
  std::string line;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp != std::string::npos) dns.txt_records[line.substr(0, sp)] = {line.substr(sp + 1)};
  }
  EXPECT_EQ(dns.txt_records.size(), 3u);
  return dns;
}

ArcVerdict arc(StaticDns& dns, const std::string& message) {
  return runSync(verifyArc(dns, std::make_shared<const std::string>(message), 1700000000));
}

void replaceOnce(std::string& s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
}

TEST(ArcVerify, FixtureChainsPass) {
  for (int n = 1; n <= 3; ++n) {
    StaticDns dns = arcDns();
    std::string m = readFile("chain" + std::to_string(n) + ".eml");
    ASSERT_FALSE(m.empty());
    ArcVerdict v = arc(dns, m);
    EXPECT_EQ(v.result, ArcResult::kPass) << n << ": " << v.reason;
    EXPECT_EQ(v.instances, n);
    EXPECT_EQ(v.sealer, "hop" + std::to_string(n) + ".example");
    EXPECT_TRUE(v.reason.empty());
  }
}

TEST(ArcVerify, CpuPoolGivesTheSameResults) {
  asio::thread_pool pool(1);
  StaticDns dns = arcDns();
  std::string m = readFile("chain3.eml");
  ArcVerdict v = runSync(verifyArc(dns, std::make_shared<const std::string>(m), 1700000000, &pool));
  EXPECT_EQ(v.result, ArcResult::kPass) << v.reason;
  replaceOnce(m, "Hello list.", "Hello LIST.");
  v = runSync(verifyArc(dns, std::make_shared<const std::string>(m), 1700000000, &pool));
  EXPECT_EQ(v.reason, "AMS i=3: body hash mismatch");
  pool.join();
}

TEST(ArcVerify, NoArcFieldsIsNone) {
  StaticDns dns = arcDns();
  ArcVerdict v = arc(dns, kMessage);
  EXPECT_EQ(v.result, ArcResult::kNone);
  EXPECT_EQ(v.instances, 0);
  EXPECT_EQ(dns.lookups, 0u);
}

struct ArcTamper {
  const char* name;
  std::string from, to;   // replaced once in chain3.eml
  std::string reason;
};

const ArcTamper kArcTampers[] = {
    {"body_changed", "Hello list.", "Hello LIST.", "AMS i=3: body hash mismatch"},
    {"signed_header_changed", "Subject: ARC fixture", "Subject: ARC fixturE", "AMS i=3: signature mismatch"},
    {"aar1_changed", "ARC-Authentication-Results: i=1; hop1.example;", "ARC-Authentication-Results: i=1; hop9.example;",
     "AS i=3: signature mismatch"},
    {"ams1_renumbered", "ARC-Message-Signature: i=1;", "ARC-Message-Signature: i=4;", "missing AMS i=1"},
    {"ams2_duplicated_instance", "ARC-Message-Signature: i=2;", "ARC-Message-Signature: i=1;", "more than one AMS i=1"},
    {"aar_without_instance", "ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: hop2.example;",
     "AAR without a valid i="},
    {"cv_newest_fail", "i=3; cv=pass;", "i=3; cv=fail;", "AS i=3 reports cv=fail"},
    {"cv_middle_none", "i=2; cv=pass;", "i=2; cv=none;", "AS i=2 has cv=none, not pass"},
    {"cv_first_pass", "i=1; cv=none;", "i=1; cv=pass;", "AS i=1 has cv=pass, not none"},
    {"seal_h_tag", "i=2; cv=pass;", "i=2; cv=pass; h=From;", "AS i=2: h= is not allowed"},
    {"old_ams_malformed", "ARC-Message-Signature: i=1; a=rsa-sha256;", "ARC-Message-Signature: i=1; a=rsa-md5;",
     "AMS i=1: unknown algorithm"},
};

class ArcVerifyTamper : public testing::TestWithParam<ArcTamper> {};

TEST_P(ArcVerifyTamper, Fails) {
  const ArcTamper& c = GetParam();
  StaticDns dns = arcDns();
  std::string m = readFile("chain3.eml");
  replaceOnce(m, c.from, c.to);
  ArcVerdict v = arc(dns, m);
  EXPECT_EQ(v.result, ArcResult::kFail);
  EXPECT_NE(v.reason.find(c.reason), std::string::npos) << v.reason;
  EXPECT_FALSE(v.temporary);
}

INSTANTIATE_TEST_SUITE_P(Cases, ArcVerifyTamper, testing::ValuesIn(kArcTampers),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ArcVerify, MissingSetAndDroppedField) {
  StaticDns dns = arcDns();
  std::string m = readFile("chain2.eml");
  // Drop the whole i=1 AS (a folded field: up to the next field).
  size_t at = m.find("ARC-Seal: i=1;");
  ASSERT_NE(at, std::string::npos);
  size_t end = m.find("\r\nARC-", at);
  m.erase(at, end + 2 - at);
  ArcVerdict v = arc(dns, m);
  EXPECT_EQ(v.result, ArcResult::kFail);
  EXPECT_EQ(v.reason, "missing AS i=1");
  EXPECT_EQ(v.instances, 2);
}

TEST(ArcVerify, KeyProblems) {
  StaticDns tempfail = arcDns();
  tempfail.tempfail.push_back("arc3._domainkey.hop3.example");
  ArcVerdict v = arc(tempfail, readFile("chain3.eml"));
  EXPECT_EQ(v.result, ArcResult::kFail);
  EXPECT_TRUE(v.temporary);
  EXPECT_NE(v.reason.find("AMS i=3: key lookup failed temporarily"), std::string::npos) << v.reason;

  StaticDns missing = arcDns();
  missing.txt_records.erase("arc1._domainkey.hop1.example");
  v = arc(missing, readFile("chain2.eml"));
  EXPECT_EQ(v.result, ArcResult::kFail);
  EXPECT_FALSE(v.temporary);
  EXPECT_EQ(v.reason, "AS i=1: no key for signature");

  // A sealer's AMS and AS share one key lookup.
  StaticDns counted = arcDns();
  EXPECT_EQ(arc(counted, readFile("chain1.eml")).result, ArcResult::kPass);
  EXPECT_EQ(counted.lookups, 1u);
}

}  // namespace
}  // namespace postern::auth
