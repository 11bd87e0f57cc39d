// Password schemes against real Dovecot hashes (made with `doveadm pw -s SCHEME -p PASSWORD`,
// Dovecot 2.3), and hashPassword round trips.
#include "directory/password.h"

#include <gtest/gtest.h>

#include <chrono>

#include <string>
#include <vector>

namespace postern::directory {
namespace {

struct Fixture {
  Scheme scheme;
  std::string password;
  std::string hash;   // without {SCHEME}
};

// doveadm pw output, pasted as is (minus the {SCHEME} prefix).
const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> kFixtures = {
      {Scheme::kSha512Crypt, "secret",
       "$6$4stBSjDznfa8DUMa$slmAiZ6XXm1eZT03mgX61spMnS5f.iIYtytFdEkytRrEN3iuKh7jCCknKBoq28Yb.99fg3yRw.mozye2xO7551"},
      {Scheme::kSha512Crypt, "secret",   // -r 10000
       "$6$rounds=10000$Gebnb3mkoN7FfWN4$Rb4DNTrhGa3y2la7ymi1bt6REjvm4/AQ2wXTP.N7m1gTUQ095VdNlgtH4fboOgiiOL2Jrq3l0GIqu6S1qwEdU1"},
      {Scheme::kSha512Crypt, "pässwörd with spaces",
       "$6$WmwoO8g1vLgt.fLR$8Q5U7B/eLxrsxfcum8N7Mm3WkJEa/CK2Y1YeZRJujDWkMQs7iY34TA1wqdKNEgcVhXaXFU0DwtEUyS3HT5aiU0"},
      {Scheme::kSha512Crypt, "correct horse",
       "$6$/94ELvFMGJz8h.vV$zZoV6KrHKwS30Xb4JZSFd.LP2D7kFRMHQVCXyUsXHo8eu12hYZVFkry6nng5nMBDo1Oj1heZdFY75q9xGbwL10"},
      {Scheme::kSha256Crypt, "secret", "$5$wRAseqsEV9DHK2xv$zpcXI5rrvZB0YANwAIgASbtueb.IxtFH0hNcx7joBN4"},
      {Scheme::kSha256Crypt, "correct horse", "$5$IP/LwGamKrXrm4rV$nuKcFpIfrXVKdHAKAJKujN8obLGNPN9./7YXmz48jdA"},
      {Scheme::kBlfCrypt, "secret", "$2y$05$fcqtImn0bii5YPeMGpstOeXCwVcPH6IdafuGDJ4SX8eUd3yyT7qAq"},
      {Scheme::kBlfCrypt, "secret", "$2y$04$sS/ETFQM1/Cn8tlWIgVpBOcsw0mZWj3/sM4R7YKayK1AchV1fauvG"},
      {Scheme::kBlfCrypt, "correct horse", "$2y$05$7iD7IaTxPCeyOYMw35ORQeIQBuYoALsNjgBdEEXyaXA3x5AGHYyQW"},
      {Scheme::kArgon2i, "secret",
       "$argon2i$v=19$m=32768,t=4,p=1$/fW7V94aQmLlnzwkeXptgw$fwJvMS7AyqiK7nv08zzYNuTBYF/rTPZm0QdWwMCzu30"},
      {Scheme::kArgon2i, "correct horse",
       "$argon2i$v=19$m=32768,t=4,p=1$ljmEYL9tz5KoHPZth4XV7g$S/MdhmfljqS4fm9HMxZXfG6UwZ9sBTphGq4xBFRDmuo"},
      {Scheme::kArgon2id, "secret",
       "$argon2id$v=19$m=65536,t=3,p=1$Qa4xoSlIZfpvXpoQQyDXhg$b2Sx2vVnvYET2Wx+rSs+BGVhEw9yogQasYc2K7ZLQTI"},
      {Scheme::kArgon2id, "correct horse",
       "$argon2id$v=19$m=65536,t=3,p=1$IaNeNYrojNRxUsipWaB0kQ$Ho4aoT7yDIGCy7RkvDHkSn/1kFWWiLwK/YbU5rrE4hQ"},
  };
  return kFixtures;
}

TEST(DirectoryPassword, SchemeNamesRoundTrip) {
  for (Scheme s : {Scheme::kSha512Crypt, Scheme::kSha256Crypt, Scheme::kBlfCrypt, Scheme::kArgon2i,
                   Scheme::kArgon2id}) {
    auto back = schemeFromName(schemeName(s));
    ASSERT_TRUE(back.has_value()) << schemeName(s);
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(schemeName(Scheme::kSha512Crypt), "SHA512-CRYPT");
  EXPECT_EQ(schemeName(Scheme::kBlfCrypt), "BLF-CRYPT");
  EXPECT_EQ(schemeFromName("argon2id"), Scheme::kArgon2id);   // case-insensitive
  EXPECT_FALSE(schemeFromName("MD5-CRYPT").has_value());
  EXPECT_FALSE(schemeFromName("PLAIN").has_value());
  EXPECT_FALSE(schemeFromName("").has_value());
}

TEST(DirectoryPassword, DovecotHashesHaveTheExpectedShape) {
  for (const auto& f : fixtures()) EXPECT_TRUE(checkHash(f.scheme, f.hash).isOk()) << f.hash;
}

TEST(DirectoryPassword, VerifiesRightPasswordAndRejectsWrongOne) {
  for (const auto& f : fixtures()) {
    SCOPED_TRACE(std::string(schemeName(f.scheme)) + " " + f.hash);
    EXPECT_TRUE(verifyPassword(f.scheme, f.hash, f.password));
    EXPECT_FALSE(verifyPassword(f.scheme, f.hash, f.password + "x"));
    EXPECT_FALSE(verifyPassword(f.scheme, f.hash, "Secret"));
    EXPECT_FALSE(verifyPassword(f.scheme, f.hash, f.password.substr(0, f.password.size() - 1)));
  }
}

bool isArgon2(Scheme s) { return s == Scheme::kArgon2i || s == Scheme::kArgon2id; }

TEST(DirectoryPassword, RejectsTruncatedHash) {
  for (const auto& f : fixtures()) {
    SCOPED_TRACE(f.hash);
    for (size_t cut : {size_t{1}, size_t{5}, size_t{29}, f.hash.size() / 2, f.hash.size() - 3}) {
      std::string truncated = f.hash.substr(0, f.hash.size() - cut);
      EXPECT_FALSE(verifyPassword(f.scheme, truncated, f.password)) << truncated;
      // crypt hashes have a fixed length; an argon2 tag may be any length from 16 bytes
      // (cut=1 and cut=5 leave a well-formed shorter tag, which verify then rejects).
      if (!isArgon2(f.scheme) || cut > 5) {
        EXPECT_FALSE(checkHash(f.scheme, truncated).isOk()) << truncated;
      }
    }
    EXPECT_FALSE(verifyPassword(f.scheme, "", f.password));
  }
}

TEST(DirectoryPassword, RejectsHashOfAnotherScheme) {
  // A valid SHA256-CRYPT hash labelled SHA512-CRYPT (and so on) never verifies.
  const auto& all = fixtures();
  for (const auto& f : all) {
    for (const auto& g : all) {
      if (f.scheme == g.scheme) continue;
      EXPECT_FALSE(verifyPassword(g.scheme, f.hash, f.password)) << schemeName(g.scheme) << " " << f.hash;
    }
  }
}

TEST(DirectoryPassword, RejectsForeignCryptHashes) {
  // crypt(3) would happily use these (DES, MD5); the scheme label must match the hash.
  EXPECT_FALSE(verifyPassword(Scheme::kSha512Crypt, "abJnggxhB/yWI", "secret"));          // DES
  EXPECT_FALSE(verifyPassword(Scheme::kSha512Crypt, "$1$abc$6Vnq0o3RgRbiEJ05hlBbl0", "x"));  // MD5
  EXPECT_FALSE(checkHash(Scheme::kBlfCrypt, "$2x$05$fcqtImn0bii5YPeMGpstOeXCwVcPH6IdafuGDJ4SX8eUd3yyT7qAq").isOk());
  EXPECT_FALSE(checkHash(Scheme::kBlfCrypt, "$2y$03$fcqtImn0bii5YPeMGpstOeXCwVcPH6IdafuGDJ4SX8eUd3yyT7qAq").isOk());
  EXPECT_FALSE(checkHash(Scheme::kArgon2i, "$argon2id$v=19$m=65536,t=3,p=1$Qa4xoSlIZfpvXpoQQyDXhg$b2Sx").isOk());
  EXPECT_FALSE(checkHash(Scheme::kArgon2id, "$argon2id$v=19$m=65536,p=1,t=3$Qa4xoSlIZfpvXpoQQyDXhg$b2Sx").isOk());
}

TEST(DirectoryPassword, RejectsUnusablePasswords) {
  const auto& f = fixtures().front();
  EXPECT_FALSE(verifyPassword(f.scheme, f.hash, ""));
  EXPECT_FALSE(verifyPassword(f.scheme, f.hash, std::string("secret\0tail", 11)));   // crypt would stop at NUL
  EXPECT_FALSE(verifyPassword(f.scheme, f.hash, std::string(kMaxPasswordLength + 1, 'a')));
}

TEST(DirectoryPassword, HashPasswordProducesVerifiableSha512Crypt) {
  Result<std::string> hashed = hashPassword("s3cret pass");
  ASSERT_TRUE(hashed.isOk()) << hashed.status().message();
  const std::string& h = *hashed;
  const std::string prefix = "{SHA512-CRYPT}$6$";
  ASSERT_EQ(h.substr(0, prefix.size()), prefix) << h;
  std::string hash = h.substr(std::string("{SHA512-CRYPT}").size());
  // "$6$rounds=100000$" + 16 salt characters + "$" + 86 characters.
  const std::string rounds = "$6$rounds=100000$";
  ASSERT_EQ(hash.substr(0, rounds.size()), rounds) << hash;
  size_t salt_end = hash.find('$', rounds.size());
  ASSERT_NE(salt_end, std::string::npos);
  EXPECT_EQ(salt_end - rounds.size(), 16u) << hash;
  EXPECT_EQ(hash.size(), rounds.size() + 16 + 1 + 86u);
  EXPECT_TRUE(verifyPassword(Scheme::kSha512Crypt, hash, "s3cret pass"));
  EXPECT_FALSE(verifyPassword(Scheme::kSha512Crypt, hash, "s3cret pasS"));
}

// AUTH for an unknown user does the work of a real check (no account-existence oracle):
// the dummy check takes at least half as long as checking a new account's hash.
TEST(DirectoryPassword, UnknownUserCheckCostsAsMuchAsAKnownOne) {
  Result<std::string> h = hashPassword("known");
  ASSERT_TRUE(h.isOk());
  std::string bare = h->substr(std::string("{SHA512-CRYPT}").size());
  EXPECT_FALSE(verifyAgainstDummy("warm-up"));   // makes the dummy hash once
  auto time = [](auto f) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) f();
    return std::chrono::steady_clock::now() - t0;
  };
  auto known = time([&] { (void)verifyPassword(Scheme::kSha512Crypt, bare, "wrong"); });
  auto unknown = time([&] { EXPECT_FALSE(verifyAgainstDummy("wrong")); });
  EXPECT_GT(unknown * 2, known) << "unknown " << unknown.count() << " known " << known.count();
}

TEST(DirectoryPassword, HashPasswordUsesFreshSalts) {
  Result<std::string> a = hashPassword("same");
  Result<std::string> b = hashPassword("same");
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(*a, *b);
}

TEST(DirectoryPassword, HashPasswordRefusesBadInput) {
  EXPECT_FALSE(hashPassword("").isOk());
  EXPECT_FALSE(hashPassword(std::string("a\0b", 3)).isOk());
  EXPECT_FALSE(hashPassword(std::string(kMaxPasswordLength + 1, 'a')).isOk());
  EXPECT_TRUE(hashPassword(std::string(kMaxPasswordLength, 'a')).isOk());
}

}  // namespace
}  // namespace postern::directory
