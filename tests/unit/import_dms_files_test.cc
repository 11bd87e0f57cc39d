// Table tests for the docker-mailserver file parsers (src/import/dms_files.h): every
// parser, its continuation rules, and the lines it refuses (with their line numbers).
#include "import/dms_files.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::import {
namespace {

std::vector<size_t> badLines(const std::vector<BadLine>& bad) {
  std::vector<size_t> out;
  for (const auto& b : bad) out.push_back(b.line);
  return out;
}

// ---- mailserver.env ----

struct EnvCase {
  const char* text;
  std::vector<std::tuple<std::string, std::string, size_t>> vars;
  std::vector<size_t> bad;
};

TEST(ImportEnvFile, Table) {
  const EnvCase cases[] = {
      {"", {}, {}},
      {"# comment\n\n   \n", {}, {}},
      {"A=1\n", {{"A", "1", 1}}, {}},
      {"A=\n", {{"A", "", 1}}, {}},
      {"OVERRIDE_HOSTNAME=mail.example.com\r\n", {{"OVERRIDE_HOSTNAME", "mail.example.com", 1}}, {}},
      {"\xEF\xBB\xBF"
       "A=1\n",
       {{"A", "1", 1}},
       {}},
      {"export A=1\n", {{"A", "1", 1}}, {}},
      {"A=\"quoted value\"\nB='single'\n", {{"A", "quoted value", 1}, {"B", "single", 2}}, {}},
      {"A=value # trailing comment\n", {{"A", "value", 1}}, {}},
      {"A=a=b\n", {{"A", "a=b", 1}}, {}},
      {"  A = 1  \n", {{"A", "1", 1}}, {}},
      {"no equals sign\nB=2\n", {{"B", "2", 2}}, {1}},
      {"A-B=1\n=2\nA.B=3\n", {}, {1, 2, 3}},
      {"A=\"unterminated\n", {}, {1}},
      {"A=1\nA=2\n", {{"A", "1", 1}, {"A", "2", 2}}, {}},
  };
  for (const auto& c : cases) {
    EnvFile f = parseEnvFile(c.text);
    ASSERT_EQ(f.vars.size(), c.vars.size()) << c.text;
    for (size_t i = 0; i < c.vars.size(); ++i) {
      EXPECT_EQ(f.vars[i].name, std::get<0>(c.vars[i])) << c.text;
      EXPECT_EQ(f.vars[i].value, std::get<1>(c.vars[i])) << c.text;
      EXPECT_EQ(f.vars[i].line, std::get<2>(c.vars[i])) << c.text;
    }
    EXPECT_EQ(badLines(f.bad), c.bad) << c.text;
  }
}

// ---- postfix-main.cf ----

struct MainCase {
  const char* text;
  std::vector<std::tuple<std::string, std::string, size_t, size_t>> settings;
  std::vector<size_t> bad;
};

TEST(ImportMainCf, Table) {
  const MainCase cases[] = {
      {"", {}, {}},
      {"# only a comment\n", {}, {}},
      {"smtpd_banner = $myhostname ESMTP\n", {{"smtpd_banner", "$myhostname ESMTP", 1, 1}}, {}},
      {"a=b\n", {{"a", "b", 1, 1}}, {}},
      {"a =\n", {{"a", "", 1, 1}}, {}},
      // Continuation lines start with whitespace; comments inside are skipped.
      {"smtpd_recipient_restrictions =\n  permit_mynetworks,\n# note\n\treject\nb = c\n",
       {{"smtpd_recipient_restrictions", "permit_mynetworks, reject", 1, 4}, {"b", "c", 5, 5}},
       {}},
      {"  orphan continuation\na = b\n", {{"a", "b", 2, 2}}, {1}},
      {"no equals\nx y = z\n", {}, {1, 2}},
      {"postscreen_upstream_proxy_protocol = haproxy\r\n",
       {{"postscreen_upstream_proxy_protocol", "haproxy", 1, 1}},
       {}},
  };
  for (const auto& c : cases) {
    MainCf f = parseMainCf(c.text);
    ASSERT_EQ(f.settings.size(), c.settings.size()) << c.text;
    for (size_t i = 0; i < c.settings.size(); ++i) {
      EXPECT_EQ(f.settings[i].name, std::get<0>(c.settings[i])) << c.text;
      EXPECT_EQ(f.settings[i].value, std::get<1>(c.settings[i])) << c.text;
      EXPECT_EQ(f.settings[i].line, std::get<2>(c.settings[i])) << c.text;
      EXPECT_EQ(f.settings[i].end_line, std::get<3>(c.settings[i])) << c.text;
    }
    EXPECT_EQ(badLines(f.bad), c.bad) << c.text;
  }
}

// ---- postfix-master.cf ----

struct MasterCase {
  const char* text;
  std::vector<std::vector<std::string>> overrides;  // service, type, param, value
  std::vector<size_t> bad;
};

TEST(ImportMasterCf, Table) {
  const MasterCase cases[] = {
      {"", {}, {}},
      {"smtps/inet/smtpd_upstream_proxy_protocol=haproxy\n",
       {{"smtps", "inet", "smtpd_upstream_proxy_protocol", "haproxy"}},
       {}},
      {"# c\nsubmission/inet/smtpd_reject_unlisted_recipient=no\nsmtp/inet/postscreen_upstream_proxy_protocol = "
       "haproxy\n",
       {{"submission", "inet", "smtpd_reject_unlisted_recipient", "no"},
        {"smtp", "inet", "postscreen_upstream_proxy_protocol", "haproxy"}},
       {}},
      {"submissions/inet/smtpd_upstream_proxy_protocol=\n",
       {{"submissions", "inet", "smtpd_upstream_proxy_protocol", ""}},
       {}},
      {"smtp/inet=haproxy\n", {}, {1}},
      {"a/b/c/d=1\n", {}, {1}},
      {"smtps/inet/smtpd_upstream_proxy_protocol haproxy\n", {}, {1}},
      {"//=x\n", {}, {1}},
      {"smtp/in et/x=1\n", {}, {1}},
  };
  for (const auto& c : cases) {
    MasterCf f = parseMasterOverrides(c.text);
    ASSERT_EQ(f.overrides.size(), c.overrides.size()) << c.text;
    for (size_t i = 0; i < c.overrides.size(); ++i) {
      EXPECT_EQ(f.overrides[i].service, c.overrides[i][0]) << c.text;
      EXPECT_EQ(f.overrides[i].type, c.overrides[i][1]) << c.text;
      EXPECT_EQ(f.overrides[i].param, c.overrides[i][2]) << c.text;
      EXPECT_EQ(f.overrides[i].value, c.overrides[i][3]) << c.text;
    }
    EXPECT_EQ(badLines(f.bad), c.bad) << c.text;
  }
}

TEST(ImportMasterCf, LineNumbersSkipComments) {
  MasterCf f = parseMasterOverrides("# one\n\nsmtp/inet/a=1\n# four\nsubmission/inet/b=2\n");
  ASSERT_EQ(f.overrides.size(), 2u);
  EXPECT_EQ(f.overrides[0].line, 3u);
  EXPECT_EQ(f.overrides[1].line, 5u);
}

// ---- postfix-relaymap.cf ----

struct RelayCase {
  const char* text;
  std::vector<std::tuple<std::string, std::string, unsigned, bool>> routes;  // domain, host, port, mx
  std::vector<size_t> bad;
};

TEST(ImportRelayMap, Table) {
  const RelayCase cases[] = {
      {"", {}, {}},
      {"@example.com [smtp.relay.example]:587\n", {{"example.com", "smtp.relay.example", 587, false}}, {}},
      {"@Example.ORG [10.0.0.5]\n", {{"example.org", "10.0.0.5", 25, false}}, {}},
      {"@example.net relay.example:2525\n", {{"example.net", "relay.example", 2525, true}}, {}},
      {"@example.net relay.example\n", {{"example.net", "relay.example", 25, true}}, {}},
      {"@excluded.example\n", {{"excluded.example", "", 25, false}}, {}},
      {"example.com [relay]:25\n", {}, {1}},
      {"@ [relay]:25\n", {}, {1}},
      {"@a.example [relay]:0\n", {}, {1}},
      {"@a.example [relay]:99999\n", {}, {1}},
      {"@a.example [relay:25\n", {}, {1}},
      {"@a.example [relay]:25 extra\n", {}, {1}},
      {"# c\n@a.example [r.example]:465\n\n@b.example\n",
       {{"a.example", "r.example", 465, false}, {"b.example", "", 25, false}},
       {}},
  };
  for (const auto& c : cases) {
    RelayMap f = parseRelayMap(c.text);
    ASSERT_EQ(f.routes.size(), c.routes.size()) << c.text;
    for (size_t i = 0; i < c.routes.size(); ++i) {
      EXPECT_EQ(f.routes[i].domain, std::get<0>(c.routes[i])) << c.text;
      EXPECT_EQ(f.routes[i].host, std::get<1>(c.routes[i])) << c.text;
      EXPECT_EQ(f.routes[i].port, std::get<2>(c.routes[i])) << c.text;
      if (!f.routes[i].host.empty()) {
        EXPECT_EQ(f.routes[i].mx_lookup, std::get<3>(c.routes[i])) << c.text;
      }
    }
    EXPECT_EQ(badLines(f.bad), c.bad) << c.text;
  }
}

// ---- postfix-sasl-password.cf ----

TEST(ImportSaslPasswords, ParsesAndNeverQuotesPasswords) {
  SaslPasswords f = parseSaslPasswords(
      "@example.com user1:pa:ss\n"
      "[smtp.relay.example]:587 user2:secret2\n"
      "@broken.example nocolonsecret\n");
  ASSERT_EQ(f.entries.size(), 2u);
  EXPECT_EQ(f.entries[0].key, "@example.com");
  EXPECT_EQ(f.entries[0].user, "user1");
  EXPECT_EQ(f.entries[0].password, "pa:ss");
  EXPECT_EQ(f.entries[1].key, "[smtp.relay.example]:587");
  EXPECT_EQ(f.entries[1].password, "secret2");
  ASSERT_EQ(f.bad.size(), 1u);
  EXPECT_EQ(f.bad[0].line, 3u);
  EXPECT_EQ(f.bad[0].text.find("nocolonsecret"), std::string::npos);
  EXPECT_EQ(f.bad[0].reason.find("nocolonsecret"), std::string::npos);
}

// ---- postfix-aliases.cf ----

struct AliasCase {
  const char* text;
  std::vector<std::pair<std::string, std::vector<std::string>>> aliases;
  std::vector<size_t> bad;
};

TEST(ImportLocalAliases, Table) {
  const AliasCase cases[] = {
      {"", {}, {}},
      {"root: admin@example.com\n", {{"root", {"admin@example.com"}}}, {}},
      {"Postmaster: a@example.com, b@example.com\n", {{"postmaster", {"a@example.com", "b@example.com"}}}, {}},
      {"list: a@example.com,\n  b@example.com\n", {{"list", {"a@example.com", "b@example.com"}}}, {}},
      {"devnull: /dev/null\n", {{"devnull", {"/dev/null"}}}, {}},
      {"\"quoted\": x@example.com\n", {{"quoted", {"x@example.com"}}}, {}},
      {"no colon here\n", {}, {1}},
      {"empty:\n", {}, {1}},
      {"a@b: c@d\n", {}, {1}},
  };
  for (const auto& c : cases) {
    LocalAliases f = parseLocalAliases(c.text);
    ASSERT_EQ(f.aliases.size(), c.aliases.size()) << c.text;
    for (size_t i = 0; i < c.aliases.size(); ++i) {
      EXPECT_EQ(f.aliases[i].name, c.aliases[i].first) << c.text;
      EXPECT_EQ(f.aliases[i].targets, c.aliases[i].second) << c.text;
    }
    EXPECT_EQ(badLines(f.bad), c.bad) << c.text;
  }
}

// ---- postfix-regexp.cf ----

struct RegexpCase {
  const char* text;
  std::string literal;  // literalAddressOf the first rule; "-" when the line is bad
};

TEST(ImportRegexp, Table) {
  const RegexpCase cases[] = {
      {"/^info@example\\.com$/ user@example.com\n", "info@example.com"},
      {"/^Info@Example\\.com$/i user@example.com\n", "info@example.com"},
      {"/^info@example.com$/ user@example.com\n", ""},  // unescaped '.' matches any character
      {"/^info-.*@example\\.com$/ user@example.com\n", ""},
      {"/^(a|b)@example\\.com$/ user@example.com\n", ""},
      {"/info@example\\.com/ user@example.com\n", ""},  // not anchored
      {"/^a+b@example\\.com$/ user@example.com\n", ""},
      {"/^a\\+b@example\\.com$/ user@example.com\n", "a+b@example.com"},
      {"/^a\\/b@x\\.org$/ u@x.org\n", ""},
      {"/unterminated user@example.com\n", "-"},
      {"/^a@b\\.c$/\n", "-"},
      {"if /x/\n", "-"},
  };
  for (const auto& c : cases) {
    RegexpAliases f = parseRegexpAliases(c.text);
    if (std::string(c.literal) == "-") {
      EXPECT_TRUE(f.rules.empty()) << c.text;
      EXPECT_EQ(badLines(f.bad), std::vector<size_t>{1}) << c.text;
      continue;
    }
    ASSERT_EQ(f.rules.size(), 1u) << c.text;
    EXPECT_EQ(literalAddressOf(f.rules[0]), c.literal) << c.text;
  }
}

// ---- dovecot-quotas.cf, dovecot.cf ----

TEST(ImportQuotas, Table) {
  Quotas f = parseQuotas("User@Example.com:50M\nb@example.com:1G\nc@example.com:0\nnoquota\nd@example.com:lots\n");
  ASSERT_EQ(f.quotas.size(), 3u);
  EXPECT_EQ(f.quotas[0].address, "user@example.com");
  EXPECT_EQ(f.quotas[0].size, "50M");
  EXPECT_EQ(f.quotas[2].size, "0");
  EXPECT_EQ(badLines(f.bad), (std::vector<size_t>{4, 5}));
}

TEST(ImportDovecotCf, SectionsAndSettings) {
  DovecotCf f = parseDovecotCf(
      "haproxy_trusted_networks = 10.0.0.0/8 192.168.1.1\n"
      "service imap-login {\n"
      "  inet_listener imap {\n"
      "    port = 0\n"
      "  }\n"
      "}\n"
      "}\n"
      "!include conf.d/x.conf\n"
      "garbage\n");
  ASSERT_EQ(f.settings.size(), 5u);
  EXPECT_EQ(f.settings[0].name, "haproxy_trusted_networks");
  EXPECT_EQ(f.settings[0].value, "10.0.0.0/8 192.168.1.1");
  EXPECT_TRUE(f.settings[1].opens_section);
  EXPECT_EQ(f.settings[1].name, "service imap-login");
  EXPECT_EQ(f.settings[3].section, "service imap-login/inet_listener imap");
  EXPECT_EQ(f.settings[3].name, "port");
  EXPECT_EQ(f.settings[3].line, 4u);
  EXPECT_EQ(f.settings[4].name, "!include conf.d/x.conf");
  EXPECT_EQ(badLines(f.bad), (std::vector<size_t>{7, 9}));
}

// ---- OpenDKIM tables and rspamd key names ----

TEST(ImportDkim, KeyTableAndSigningTable) {
  KeyTable kt = parseKeyTable(
      "mail._domainkey.example.com example.com:mail:/etc/opendkim/keys/example.com/mail.private\n"
      "broken example.com:mail\n");
  ASSERT_EQ(kt.keys.size(), 1u);
  EXPECT_EQ(kt.keys[0].domain, "example.com");
  EXPECT_EQ(kt.keys[0].selector, "mail");
  EXPECT_EQ(kt.keys[0].path, "/etc/opendkim/keys/example.com/mail.private");
  EXPECT_EQ(badLines(kt.bad), std::vector<size_t>{2});
  SigningTable st = parseSigningTable("*@example.com mail._domainkey.example.com\nlonely\n");
  ASSERT_EQ(st.entries.size(), 1u);
  EXPECT_EQ(st.entries[0].pattern, "*@example.com");
  EXPECT_EQ(badLines(st.bad), std::vector<size_t>{2});
}

TEST(ImportDkim, RspamdKeyNames) {
  struct Case {
    const char* name;
    const char* domain;  // nullptr: refused
    const char* selector;
  };
  const Case cases[] = {
      {"rsa-2048-mail-example.com.private.txt", "example.com", "mail"},
      {"ed25519-dkim-Example.ORG.private.txt", "example.org", "dkim"},
      {"rsa-2048-mail-example.com.public.txt", nullptr, nullptr},
      {"rsa-x-mail-example.com.private.txt", nullptr, nullptr},
      {"dsa-mail-example.com.private.txt", nullptr, nullptr},
      {"rsa-2048-mail.private.txt", nullptr, nullptr},
  };
  for (const auto& c : cases) {
    std::string d, s;
    bool ok = parseRspamdKeyName(c.name, d, s);
    EXPECT_EQ(ok, c.domain != nullptr) << c.name;
    if (ok) {
      EXPECT_EQ(d, c.domain);
      EXPECT_EQ(s, c.selector);
    }
  }
}

TEST(ImportParsers, OverlongLinesAreBadNotFatal) {
  std::string big(kMaxLineLength + 1, 'a');
  EXPECT_EQ(parseEnvFile(big + "=1\nB=2\n").bad.size(), 1u);
  EXPECT_EQ(parseMainCf(big + " = 1\nb = 2\n").settings.size(), 1u);
  EXPECT_EQ(parseMasterOverrides(big + "\n").bad.size(), 1u);
}

}  // namespace
}  // namespace postern::import
