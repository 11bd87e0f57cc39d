// parseAccounts: docker-mailserver postfix-accounts.cf lines, and every error path with
// its exact FILE:LINE message.
#include "directory/accounts.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::directory {
namespace {

const std::string kSha512 =
    "$6$4stBSjDznfa8DUMa$slmAiZ6XXm1eZT03mgX61spMnS5f.iIYtytFdEkytRrEN3iuKh7jCCknKBoq28Yb.99fg3yRw.mozye2xO7551";
const std::string kSha256 = "$5$wRAseqsEV9DHK2xv$zpcXI5rrvZB0YANwAIgASbtueb.IxtFH0hNcx7joBN4";
const std::string kBlf = "$2y$05$fcqtImn0bii5YPeMGpstOeXCwVcPH6IdafuGDJ4SX8eUd3yyT7qAq";
const std::string kArgon2i =
    "$argon2i$v=19$m=32768,t=4,p=1$/fW7V94aQmLlnzwkeXptgw$fwJvMS7AyqiK7nv08zzYNuTBYF/rTPZm0QdWwMCzu30";
const std::string kArgon2id =
    "$argon2id$v=19$m=65536,t=3,p=1$Qa4xoSlIZfpvXpoQQyDXhg$b2Sx2vVnvYET2Wx+rSs+BGVhEw9yogQasYc2K7ZLQTI";

TEST(DirectoryAccounts, ParsesEverySchemeCommentsAndBlankLines) {
  std::string text = "# accounts\n"
                     "\n"
                     "a@example.com|{SHA512-CRYPT}" + kSha512 + "\n"
                     "   \n"
                     "b@example.com|{SHA256-CRYPT}" + kSha256 + "\n"
                     "  # indented comment\n"
                     "c@example.com|{BLF-CRYPT}" + kBlf + "\n"
                     "d@example.org|{ARGON2I}" + kArgon2i + "\n"
                     "e@example.org|{ARGON2ID}" + kArgon2id;   // no final newline
  Result<AccountsFile> r = parseAccounts(text, "accounts.cf");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->accounts.size(), 5u);
  EXPECT_TRUE(r->notes.empty());
  const auto& a = r->accounts;
  EXPECT_EQ(a[0].address, "a@example.com");
  EXPECT_EQ(a[0].scheme, Scheme::kSha512Crypt);
  EXPECT_EQ(a[0].hash, kSha512);
  EXPECT_EQ(a[0].line, 3u);
  EXPECT_EQ(a[1].scheme, Scheme::kSha256Crypt);
  EXPECT_EQ(a[1].line, 5u);
  EXPECT_EQ(a[2].scheme, Scheme::kBlfCrypt);
  EXPECT_EQ(a[2].line, 7u);
  EXPECT_EQ(a[3].scheme, Scheme::kArgon2i);
  EXPECT_EQ(a[3].hash, kArgon2i);
  EXPECT_EQ(a[4].scheme, Scheme::kArgon2id);
  EXPECT_EQ(a[4].line, 9u);
}

TEST(DirectoryAccounts, EmptyTextIsNoAccounts) {
  Result<AccountsFile> r = parseAccounts("", "accounts.cf");
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->accounts.empty());
}

TEST(DirectoryAccounts, LowercasesAddressesAndAcceptsSchemeInAnyCase) {
  Result<AccountsFile> r = parseAccounts("John.Doe@Example.COM|{sha512-crypt}" + kSha512 + "\n", "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->accounts[0].address, "john.doe@example.com");
  EXPECT_EQ(r->accounts[0].scheme, Scheme::kSha512Crypt);
}

TEST(DirectoryAccounts, StripsCarriageReturnsAndByteOrderMark) {
  std::string text = "\xEF\xBB\xBF" "a@example.com|{SHA512-CRYPT}" + kSha512 + "\r\n" +
                     "b@example.com|{BLF-CRYPT}" + kBlf + "\r\n";
  Result<AccountsFile> r = parseAccounts(text, "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->accounts.size(), 2u);
  EXPECT_EQ(r->accounts[0].address, "a@example.com");
  EXPECT_EQ(r->accounts[0].hash, kSha512);
  EXPECT_EQ(r->accounts[1].hash, kBlf);
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_EQ(r->notes[0].line, 1u);
  EXPECT_NE(r->notes[0].message.find("byte order mark"), std::string::npos);
}

TEST(DirectoryAccounts, ExtraFieldsAreIgnoredWithANote) {
  std::string text = "a@example.com|{SHA512-CRYPT}" + kSha512 + "|userdb_quota_rule=*:storage=1G\n" +
                     "b@example.com|{BLF-CRYPT}" + kBlf + "|x|y\n" + "c@example.com|{BLF-CRYPT}" + kBlf + "\n";
  Result<AccountsFile> r = parseAccounts(text, "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->accounts.size(), 3u);
  EXPECT_EQ(r->accounts[0].hash, kSha512);
  EXPECT_EQ(r->accounts[1].hash, kBlf);
  ASSERT_EQ(r->notes.size(), 2u);
  EXPECT_EQ(r->notes[0].line, 1u);
  EXPECT_EQ(r->notes[0].message,
            "ignoring 1 extra '|'-separated field after the password hash of a@example.com");
  EXPECT_EQ(r->notes[1].line, 2u);
  EXPECT_EQ(r->notes[1].message,
            "ignoring 2 extra '|'-separated fields after the password hash of b@example.com");
}

TEST(DirectoryAccounts, SurroundingBlanksAreTrimmed) {
  Result<AccountsFile> r = parseAccounts("  a@example.com | {SHA512-CRYPT}" + kSha512 + " \t\n", "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->accounts[0].address, "a@example.com");
  EXPECT_EQ(r->accounts[0].hash, kSha512);
}

struct ErrorCase {
  const char* name;
  std::string text;
  std::string message;   // exact Status message
};

TEST(DirectoryAccounts, ErrorsCarryFileAndLine) {
  const std::string ok = "ok@example.com|{SHA512-CRYPT}" + kSha512 + "\n";
  const std::vector<ErrorCase> cases = {
      {"no separator", ok + "# c\nuser@example.com\n",
       "accounts.cf:3: error: expected ADDRESS|{SCHEME}HASH, found no '|'"},
      {"no at", ok + "userexample.com|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:2: error: invalid address 'userexample.com': the address has no '@' (expected local@domain)"},
      {"empty local part", "@example.com|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:1: error: invalid address '@example.com': the local part (before '@') is empty"},
      {"empty domain", "\n\nuser@|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:3: error: invalid address 'user@': the domain is empty"},
      {"two ats", "a@b@example.com|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:1: error: invalid address 'a@b@example.com': the address has more than one '@'"},
      {"space", "a b@example.com|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:1: error: invalid address 'a b@example.com': the address contains a space"},
      {"control character", std::string("a\x01@example.com|{SHA512-CRYPT}") + kSha512 + "\n",
       "accounts.cf:1: error: invalid address 'a\\x01@example.com': the address contains a control character"},
      {"bad domain", "a@example..com|{SHA512-CRYPT}" + kSha512 + "\n",
       "accounts.cf:1: error: invalid address 'a@example..com': the domain has an empty label (leading, trailing "
       "or double dot)"},
      {"unknown scheme", ok + ok.substr(0, 0) + "\n\n\n\n\nu@example.com|{MD5}$1$abc$def\n",
       "accounts.cf:7: error: unknown password scheme {MD5} (supported: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, "
       "ARGON2I, ARGON2ID)"},
      {"no scheme", "u@example.com|" + kSha512 + "\n",
       "accounts.cf:1: error: password hash has no {SCHEME} prefix (expected e.g. {SHA512-CRYPT}$6$...)"},
      {"unterminated scheme", "u@example.com|{SHA512-CRYPT" + kSha512 + "\n",
       "accounts.cf:1: error: unterminated {SCHEME} prefix (no '}')"},
      {"empty hash", "u@example.com|\n", "accounts.cf:1: error: missing password hash after '|'"},
      {"wrong prefix", "u@example.com|{SHA512-CRYPT}" + kSha256 + "\n",
       "accounts.cf:1: error: malformed SHA512-CRYPT hash for u@example.com: hash does not start with $6$"},
      {"truncated", "u@example.com|{SHA512-CRYPT}" + kSha512.substr(0, 100) + "\n",
       "accounts.cf:1: error: malformed SHA512-CRYPT hash for u@example.com: hash part must be 86 characters of "
       "[./0-9A-Za-z], found 80 (truncated?)"},
      {"truncated bcrypt", "u@example.com|{BLF-CRYPT}" + kBlf.substr(0, 40) + "\n",
       "accounts.cf:1: error: malformed BLF-CRYPT hash for u@example.com: bcrypt salt and hash must be 53 "
       "characters of [./0-9A-Za-z], found 33 (truncated?)"},
      {"argon2 params", "u@example.com|{ARGON2ID}$argon2id$v=19$m=x,t=3,p=1$Qa4xoSlIZfpvXpoQQyDXhg$b2Sx\n",
       "accounts.cf:1: error: malformed ARGON2ID hash for u@example.com: malformed parameters (expected "
       "m=M,t=T,p=P)"},
      {"duplicate", ok + "\nOK@Example.com|{BLF-CRYPT}" + kBlf + "\n",
       "accounts.cf:3: error: duplicate account ok@example.com (first defined on line 1)"},
  };
  for (const auto& c : cases) {
    Result<AccountsFile> r = parseAccounts(c.text, "accounts.cf");
    ASSERT_FALSE(r.isOk()) << c.name;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid) << c.name;
    EXPECT_EQ(r.status().message(), c.message) << c.name;
  }
}

TEST(DirectoryAccounts, ErrorMessagesQuoteNoControlBytesAndStayShort) {
  std::string address = std::string(300, 'a') + "\x1b[31m@example.com";
  Result<AccountsFile> r = parseAccounts(address + "|{SHA512-CRYPT}" + kSha512, "f");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos);
  EXPECT_LT(r.status().message().size(), 200u);
}

TEST(DirectoryAccounts, CheckAddress) {
  for (const char* good : {"a@b", "john.doe+tag@example.com", "x_y@mail-1.example.co.uk", "o'brien@example.ie",
                           "\xc3\xa9t\xc3\xa9@exemple.fr", "user@xn--bcher-kva.example"}) {
    EXPECT_TRUE(checkAddress(good).isOk()) << good;
  }
  for (const char* bad : {"", "a", "a@", "@b", "a@b@c", "a b@c", "a@b c", "a|b@c", "a,b@c", "<a@b>", "a@[1.2.3.4]",
                          "a@.b", "a@b.", "a@b:25", "\"a\"@b", "a@b\t"}) {
    EXPECT_FALSE(checkAddress(bad).isOk()) << bad;
  }
  EXPECT_FALSE(checkAddress(std::string(250, 'a') + "@b.cc").isOk());
}

}  // namespace
}  // namespace postern::directory
