// Traefik's acme.json (tls/traefik_acme.h): both layouts, and every way an entry or the
// file can be unusable.
#include "tls/traefik_acme.h"

#include <gtest/gtest.h>

namespace postern::tls {
namespace {

// "-----BEGIN X-----\n" in base64, standing in for a PEM blob (the parser does not parse PEM).
constexpr const char* kPemB64 = "LS0tLS1CRUdJTiBYLS0tLS0K";
constexpr const char* kPem = "-----BEGIN X-----\n";

TEST(TraefikAcme, Base64) {
  struct Case {
    const char* in;
    bool ok;
    const char* out;
  } cases[] = {
      {"", true, ""},
      {"Zg==", true, "f"},
      {"Zm8=", true, "fo"},
      {"Zm9v", true, "foo"},
      {"Zm9v\nYmFy", true, "foobar"},   // line breaks ignored
      {"Zm9", false, ""},               // bad length
      {"Zm9v=", false, ""},
      {"Z===", false, ""},
      {"Zg==Zg==", false, ""},          // data after padding
      {"Zm9-", false, ""},              // URL-safe alphabet is not this one
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(decodeBase64(c.in, out), c.ok) << c.in;
    if (c.ok) EXPECT_EQ(out, c.out) << c.in;
  }
}

TEST(TraefikAcme, V2LayoutWithSeveralResolvers) {
  std::string json = std::string(R"({
    "le": {"Account": {"Email": "a@example.com"}, "Certificates": [
      {"domain": {"main": "mail.example.com", "sans": ["smtp.example.com"]},
       "certificate": ")") + kPemB64 + R"(", "key": ")" + kPemB64 + R"(", "Store": "default"},
      {"domain": {"main": "www.example.com"}, "certificate": ")" + kPemB64 + R"(", "key": ")" + kPemB64 + R"("}
    ]},
    "staging": {"Account": null, "Certificates": null}
  })";
  auto f = parseTraefikAcme(json);
  ASSERT_TRUE(f) << f.status().message();
  ASSERT_EQ(f->entries.size(), 2u);
  EXPECT_EQ(f->entries[0].resolver, "le");
  EXPECT_EQ(f->entries[0].main, "mail.example.com");
  EXPECT_EQ(f->entries[0].sans, std::vector<std::string>{"smtp.example.com"});
  EXPECT_EQ(f->entries[0].cert_pem, kPem);
  EXPECT_EQ(f->entries[1].index, 2u);
  EXPECT_EQ(f->resolvers, (std::vector<std::string>{"le", "staging"}));
  EXPECT_TRUE(f->problems.empty());
}

TEST(TraefikAcme, V1Layout) {
  std::string json = std::string(R"({"Account": {}, "Certificates": [
      {"Domain": {"Main": "mail.example.com", "SANs": null}, "Certificate": ")") + kPemB64 +
                     R"(", "Key": ")" + kPemB64 + R"("}], "HTTPChallenge": {}})";
  auto f = parseTraefikAcme(json);
  ASSERT_TRUE(f) << f.status().message();
  ASSERT_EQ(f->entries.size(), 1u);
  EXPECT_EQ(f->entries[0].resolver, "");
  EXPECT_EQ(f->entries[0].main, "mail.example.com");
  EXPECT_EQ(f->entries[0].key_pem, kPem);
}

TEST(TraefikAcme, UnusableEntriesAreSkippedAndNamed) {
  std::string json = std::string(R"({"le": {"Certificates": [
      {"domain": {"main": "a.example"}, "certificate": "not base64!", "key": ")") + kPemB64 + R"("},
      {"domain": {"main": "b.example"}, "certificate": ")" + kPemB64 + R"("},
      {"domain": {"main": "c.example"}, "certificate": ")" + kPemB64 + R"(", "key": "Zm9"},
      {"domain": {"main": "d.example"}, "certificate": ")" + kPemB64 + R"(", "key": ")" + kPemB64 + R"("}
  ]}})";
  auto f = parseTraefikAcme(json);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->entries.size(), 1u);
  EXPECT_EQ(f->entries[0].main, "d.example");
  EXPECT_EQ(f->entries[0].index, 4u);
  EXPECT_EQ(f->problems, (std::vector<std::string>{"resolver le, entry 1: the certificate is not base64",
                                                   "resolver le, entry 2: no certificate or key",
                                                   "resolver le, entry 3: the key is not base64"}));
}

TEST(TraefikAcme, FilesThatAreNotAcmeStorage) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"", "not valid JSON"},
      {"{\"le\": {", "not valid JSON"},
      {"[]", "the top level is not an object"},
      {"{\"http\": {\"routers\": {}}}", "'http' is not a certificate resolver"},
      {"{\"le\": 3}", "'le' is not a certificate resolver"},
      {"{\"le\": {\"Certificates\": {}}}", nullptr},   // readable; the list is reported
  };
  for (const auto& c : cases) {
    auto f = parseTraefikAcme(c.json);
    if (!c.message) {
      ASSERT_TRUE(f) << c.json;
      EXPECT_EQ(f->problems, std::vector<std::string>{"resolver le: Certificates is not a list"});
      continue;
    }
    ASSERT_FALSE(f) << c.json;
    EXPECT_NE(f.status().message().find(c.message), std::string::npos) << f.status().message();
  }
}

}  // namespace
}  // namespace postern::tls
