// parseAliases: docker-mailserver postfix-virtual.cf (Postfix virtual(5)) lines, and every
// error path with its exact FILE:LINE message.
#include "directory/aliases.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::directory {
namespace {

using Targets = std::vector<std::string>;

TEST(DirectoryAliases, ParsesAliasesListsAndCatchAll) {
  std::string text =
      "# aliases\n"
      "\n"
      "info@example.com user@example.com\n"
      "team@example.com\ta@example.com,b@example.com, c@example.net\n"
      "Sales@Example.COM  a@example.com b@example.com ,c@example.net,\n"
      "@example.org catchall@example.org\n";
  Result<AliasesFile> r = parseAliases(text, "virtual.cf");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->aliases.size(), 4u);
  EXPECT_TRUE(r->notes.empty());
  const auto& a = r->aliases;
  EXPECT_EQ(a[0].source, "info@example.com");
  EXPECT_EQ(a[0].targets, Targets{"user@example.com"});
  EXPECT_EQ(a[0].line, 3u);
  EXPECT_EQ(a[0].end_line, 3u);
  EXPECT_EQ(a[1].targets, (Targets{"a@example.com", "b@example.com", "c@example.net"}));
  EXPECT_EQ(a[2].source, "sales@example.com");
  EXPECT_EQ(a[2].targets, (Targets{"a@example.com", "b@example.com", "c@example.net"}));
  EXPECT_EQ(a[3].source, "@example.org");
  EXPECT_EQ(a[3].targets, Targets{"catchall@example.org"});
  EXPECT_EQ(a[3].line, 6u);
}

TEST(DirectoryAliases, TargetsAreLowercased) {
  Result<AliasesFile> r = parseAliases("a@x.org Bob@Remote.EXAMPLE\n", "f");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->aliases[0].targets, Targets{"bob@remote.example"});
}

TEST(DirectoryAliases, AliasMayListItself) {
  Result<AliasesFile> r = parseAliases("a@x.org a@x.org, b@y.org\n", "f");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->aliases[0].targets, (Targets{"a@x.org", "b@y.org"}));
}

TEST(DirectoryAliases, CarriageReturnsAndByteOrderMark) {
  Result<AliasesFile> r = parseAliases("\xEF\xBB\xBF" "a@x.org b@x.org\r\n@y.org c@x.org\r\n", "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->aliases.size(), 2u);
  EXPECT_EQ(r->aliases[0].source, "a@x.org");
  EXPECT_EQ(r->aliases[0].targets, Targets{"b@x.org"});
  EXPECT_EQ(r->aliases[1].targets, Targets{"c@x.org"});
  ASSERT_EQ(r->notes.size(), 1u);
}

TEST(DirectoryAliases, ContinuationLinesFollowPostfixWithANote) {
  std::string text =
      "team@x.org a@x.org,\n"
      "   b@x.org\n"
      "# a comment inside is skipped\n"
      "\tc@x.org\n"
      "next@x.org d@x.org\n";
  Result<AliasesFile> r = parseAliases(text, "f");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->aliases.size(), 2u);
  EXPECT_EQ(r->aliases[0].targets, (Targets{"a@x.org", "b@x.org", "c@x.org"}));
  EXPECT_EQ(r->aliases[0].line, 1u);
  EXPECT_EQ(r->aliases[0].end_line, 4u);
  EXPECT_EQ(r->aliases[1].line, 5u);
  ASSERT_EQ(r->notes.size(), 2u);
  EXPECT_EQ(r->notes[0].line, 2u);
  EXPECT_EQ(r->notes[0].message,
            "continues the alias on line 1 (a line starting with whitespace continues the previous line)");
  EXPECT_EQ(r->notes[1].line, 4u);
}

struct ErrorCase {
  const char* name;
  std::string text;
  std::string message;
};

TEST(DirectoryAliases, ErrorsCarryFileAndLine) {
  const std::vector<ErrorCase> cases = {
      {"no targets", "a@x.org b@x.org\n# c\nlonely@x.org\n", "virtual.cf:3: error: alias lonely@x.org has no targets"},
      {"only commas", "a@x.org , ,\n", "virtual.cf:1: error: alias a@x.org has no targets"},
      {"alias without at", "\nroot admin@x.org\n",
       "virtual.cf:2: error: invalid alias 'root': the address has no '@' (expected local@domain) (expected "
       "alias@domain or @domain; Postfix's bare 'user' and 'domain anything' forms are not supported)"},
      {"aliases(5) colon", "a@x.org: b@x.org\n",
       "virtual.cf:1: error: invalid alias 'a@x.org:': the domain contains ':' (no ':' after the alias: that is "
       "aliases(5) syntax, virtual(5) separates with whitespace)"},
      {"catch-all bad domain", "@x..org b@x.org\n",
       "virtual.cf:1: error: invalid alias '@x..org': the domain has an empty label (leading, trailing or double "
       "dot)"},
      {"bare target", "a@x.org b@x.org, root\n",
       "virtual.cf:1: error: invalid target 'root' of alias a@x.org: the address has no '@' (expected local@domain)"},
      {"target empty domain", "a@x.org\n\n\n b@\n",
       "virtual.cf:4: error: invalid target 'b@' of alias a@x.org: the domain is empty"},
      {"pipe target", "a@x.org |/bin/sh\n",
       "virtual.cf:1: error: invalid target '|/bin/sh' of alias a@x.org: the address contains '|'"},
      {"inline comment", "a@x.org b@x.org # old\n",
       "virtual.cf:1: error: '#' starts a comment only at the beginning of a line (found '#' among the targets of "
       "a@x.org)"},
      {"duplicate", "a@x.org b@x.org\n@x.org c@x.org\nA@X.org d@x.org\n",
       "virtual.cf:3: error: duplicate alias a@x.org (first defined on line 1)"},
      {"duplicate catch-all", "@x.org b@x.org\n@X.ORG c@x.org\n",
       "virtual.cf:2: error: duplicate alias @x.org (first defined on line 1)"},
      {"continuation first", "  a@x.org b@x.org\n",
       "virtual.cf:1: error: line starts with whitespace, which in Postfix tables continues the previous line, but "
       "there is no alias line before it"},
  };
  for (const auto& c : cases) {
    Result<AliasesFile> r = parseAliases(c.text, "virtual.cf");
    ASSERT_FALSE(r.isOk()) << c.name;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid) << c.name;
    EXPECT_EQ(r.status().message(), c.message) << c.name;
  }
}

TEST(DirectoryAliases, SplitTargets) {
  using Views = std::vector<std::string_view>;
  EXPECT_EQ(splitTargets("a@x,b@x"), (Views{"a@x", "b@x"}));
  EXPECT_EQ(splitTargets(" a@x , b@x\tc@x,, "), (Views{"a@x", "b@x", "c@x"}));
  EXPECT_TRUE(splitTargets(" , ").empty());
  EXPECT_TRUE(splitTargets("").empty());
}

}  // namespace
}  // namespace postern::directory
