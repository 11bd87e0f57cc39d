// Table tests for configuration validation: every error kind carries FILE:LINE:COL.
#include <gtest/gtest.h>

#include <fstream>

#include "config/config.h"

namespace postern::config {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/config_test";
    std::system(("mkdir -p " + dir_).c_str());
    std::ofstream(dir_ + "/accounts.cf") << "";
    path_ = dir_ + "/postern.toml";
  }
  LoadResult load(const std::string& text) { return loadFromString(text, path_); }
  static std::string joined(const LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics) out += d.toString() + "\n";
    return out;
  }
  std::string dir_, path_;
};

const char* kBase = R"(hostname = "mail.example.test"
data_dir = "data"
[directory]
accounts = "accounts.cf"
[[listener]]
service = "smtp"
address = "127.0.0.1:25"
)";

TEST_F(ConfigTest, MinimalIsValidWithDefaults) {
  auto r = load(kBase);
  ASSERT_TRUE(r.config) << joined(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.smtp.max_message_size, kDefaultMaxMessageSize);
  EXPECT_EQ(c.smtp.max_recipients, 100u);
  EXPECT_EQ(c.smtp.command_timeout_ms, 300000u);
  EXPECT_EQ(c.proxy.header_timeout_ms, 5000u);
  EXPECT_EQ(c.spool.commit_wait_ms, 1u);
  EXPECT_EQ(c.spool.commit_batch, 128u);
  EXPECT_EQ(c.spool.segment_size, 64ull * 1024 * 1024);
  EXPECT_EQ(c.queue.lifetime_ms, 5ull * 24 * 3600 * 1000);
  // The host's loopback is exempt from limits and bans unless allow_networks is written.
  ASSERT_EQ(c.protect.allow_networks.size(), 2u);
  EXPECT_EQ(c.protect.allow_networks[0].toString(), "127.0.0.0/8");
  EXPECT_EQ(c.protect.allow_networks[1].toString(), "::1/128");
  auto empty = load(std::string(kBase) + "[protect]\nallow_networks = []\n");
  ASSERT_TRUE(empty.config);
  EXPECT_TRUE(empty.config->protect.allow_networks.empty());
  EXPECT_EQ(c.queue.retry_min_ms, 300'000u);
  EXPECT_EQ(c.queue.retry_max_ms, 3'600'000u);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].name, "smtp");
  EXPECT_EQ(c.listeners[0].proxy, ProxyMode::kOff);
  EXPECT_EQ(c.data_dir, dir_ + "/data");
  EXPECT_EQ(c.accounts_path, dir_ + "/accounts.cf");
  EXPECT_EQ(c.mailbox_root, dir_ + "/data/mail");
}

struct ErrorCase {
  const char* name;
  std::string text;
  std::string expected;   // substring of the diagnostics, including the position
};

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(ConfigErrorTest, Reports) {
  auto r = load(GetParam().text);
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.hasErrors());
  EXPECT_NE(joined(r).find(path_ + GetParam().expected), std::string::npos) << joined(r);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConfigErrorTest,
    ::testing::Values(
        ErrorCase{"UnknownKey", std::string(kBase) + "colour = 1\n", ":8:1: error: unknown setting 'colour'"},
        ErrorCase{"DidYouMean", std::string(kBase) + "[smtp]\nmax_recipient = 5\n",
                  ":9:1: error: unknown setting 'max_recipient' in [smtp] (did you mean 'max_recipients'?)"},
        ErrorCase{"WrongType", std::string(kBase) + "[smtp]\nmax_recipients = \"5\"\n",
                  ":9:18: error: 'max_recipients' must be an integer"},
        ErrorCase{"BadDuration", std::string(kBase) + "[smtp]\ncommand_timeout = \"soon\"\n",
                  ":9:19: error: 'command_timeout': bad duration"},
        ErrorCase{"BadAddress", "hostname = \"h\"\n[directory]\naccounts = \"accounts.cf\"\n[[listener]]\nservice = \"smtp\"\naddress = \"1.2.3:25\"\n",
                  ":6:11: error: bad listen address"},
        ErrorCase{"BadCidr", std::string(kBase) + "[proxy_protocol]\ntrusted_networks = [\"10.1.2.3/8\"]\n",
                  ":9:21: error: 'trusted_networks': bad network"},
        ErrorCase{"UnreadableFile", std::string(kBase) + "[tls]\ncert = \"nope.pem\"\nkey = \"nope.key\"\n",
                  ":9:8: error: cannot read certificate file"},
        ErrorCase{"DuplicateListen", std::string(kBase) + "[[listener]]\nservice = \"submission\"\naddress = \"0.0.0.0:25\"\n",
                  ":8:1: error: listen address 0.0.0.0:25 of listener 'submission' collides"},
        ErrorCase{"UnknownService", "hostname = \"h\"\n[directory]\naccounts = \"accounts.cf\"\n[[listener]]\nservice = \"submision\"\naddress = \"1.2.3.4:25\"\n",
                  ":5:11: error: unknown service 'submision' (did you mean 'submission'?)"},
        ErrorCase{"ReservedService", "hostname = \"h\"\n[directory]\naccounts = \"accounts.cf\"\n[[listener]]\nservice = \"pop3\"\naddress = \"1.2.3.4:25\"\n",
                  ":5:11: error: service 'pop3' is reserved"},
        ErrorCase{"BadProxyMode", std::string(kBase) + "proxy_protocol = \"on\"\n",
                  ":8:18: error: 'proxy_protocol' must be"},
        ErrorCase{"BadProxyModeInListener", std::string(kBase).replace(std::string(kBase).find("address"), 0, "proxy_protocol = \"on\"\n"),
                  ":7:18: error: 'proxy_protocol' must be \"off\", \"required\" or \"mixed\", not \"on\" (did you mean \"required\"?)"},
        ErrorCase{"TlsNeeded", std::string(kBase) + "[[listener]]\nservice = \"submissions\"\naddress = \"127.0.0.1:465\"\n",
                  ":8:1: error: listener 'submissions' needs TLS"},
        ErrorCase{"MissingHostname", "[directory]\naccounts = \"accounts.cf\"\n[[listener]]\nservice = \"smtp\"\naddress = \"1.2.3.4:25\"\n",
                  ":1:1: error: 'hostname' is required"},
        ErrorCase{"NoListener", "hostname = \"h\"\n[directory]\naccounts = \"accounts.cf\"\n", ":1:1: error: no [[listener]]"},
        ErrorCase{"TomlSyntax", std::string(kBase) + "[smtp\n", ":8:6: error:"},
        ErrorCase{"ZeroMaxConnections", std::string(kBase) + "[server]\nmax_connections = 0\n",
                  ":9:19: error: 'max_connections' must be at least 1"},
        ErrorCase{"ZeroMaxErrors", std::string(kBase) + "[smtp]\nmax_errors = 0\n", ":9:14: error: 'max_errors' must be at least 1"},
        ErrorCase{"LongCommitWait", std::string(kBase) + "[spool]\ncommit_wait = \"1s\"\n",
                  ":9:15: error: 'commit_wait' must be at most 100ms"},
        ErrorCase{"ZeroCommitBatch", std::string(kBase) + "[spool]\ncommit_batch = 0\n",
                  ":9:16: error: 'commit_batch' must be at least 1"},
        ErrorCase{"UnknownSpoolKey", std::string(kBase) + "[spool]\ncommit_delay = \"1ms\"\n",
                  ":9:1: error: unknown setting 'commit_delay' in [spool]"},
        ErrorCase{"SmallSegment", std::string(kBase) + "[spool]\nsegment_size = 1000\n",
                  ":9:16: error: 'segment_size' must be between 64 KiB and 1024 MiB"},
        ErrorCase{"HugeMessages", std::string(kBase) + "[smtp]\nmax_message_size = \"100MiB\"\n",
                  ":9:20: error: 'max_message_size' must be at most 60 MiB"},
        ErrorCase{"RetryMaxShort", std::string(kBase) + "[queue]\nretry_min = \"10m\"\nretry_max = \"5m\"\n",
                  ":10:13: error: 'retry_max' (5m) must not be shorter than 'retry_min' (10m)"},
        ErrorCase{"RetryMinAboveDefaultMax", std::string(kBase) + "[queue]\nretry_min = \"2h\"\n",
                  ":9:13: error: 'retry_max' (1h) must not be shorter than 'retry_min' (2h)"},
        ErrorCase{"TinyLifetime", std::string(kBase) + "[queue]\nlifetime = \"0s\"\n",
                  ":9:12: error: 'lifetime' must be at least 1s"},
        ErrorCase{"UnknownQueueKey", std::string(kBase) + "[queue]\nmax_age = \"1d\"\n",
                  ":9:1: error: unknown setting 'max_age' in [queue]"},
        ErrorCase{"DnsBadServer", std::string(kBase) + "[dns]\nservers = [\"127.0.0.1:53\", \"1.2.3:53\"]\n",
                  ":9:28: error: 'servers': bad address \"1.2.3:53\""},
        ErrorCase{"DnsBadPort", std::string(kBase) + "[dns]\nservers = [\"127.0.0.1:99999\"]\n",
                  ":9:12: error: 'servers': bad address"},
        ErrorCase{"DnsServersNotArray", std::string(kBase) + "[dns]\nservers = \"127.0.0.1\"\n",
                  ":9:11: error: 'servers' must be an array"},
        ErrorCase{"DnsDuplicateServer", std::string(kBase) + "[dns]\nservers = [\"127.0.0.1\", \"127.0.0.1:53\"]\n",
                  ":9:25: error: 'servers': 127.0.0.1:53 is listed twice"},
        ErrorCase{"DnsBadTimeout", std::string(kBase) + "[dns]\ntimeout = \"soon\"\n",
                  ":9:11: error: 'timeout': bad duration"},
        ErrorCase{"DnsLongTimeout", std::string(kBase) + "[dns]\ntimeout = \"5m\"\n",
                  ":9:11: error: 'timeout' must be from 100ms to"},
        ErrorCase{"DnsZeroCache", std::string(kBase) + "[dns]\ncache_size = 0\n",
                  ":9:14: error: 'cache_size' must be at least 1"},
        ErrorCase{"DnsUnknownKey", std::string(kBase) + "[dns]\nserver = [\"127.0.0.1\"]\n",
                  ":9:1: error: unknown setting 'server' in [dns] (did you mean 'servers'?)"}),
    [](const ::testing::TestParamInfo<ErrorCase>& i) { return i.param.name; });

TEST_F(ConfigTest, DnsSection) {
  auto def = load(kBase);
  ASSERT_TRUE(def.config) << joined(def);
  EXPECT_TRUE(def.config->dns.servers.empty());
  EXPECT_EQ(def.config->dns.timeout_ms, kDefaultDnsTimeoutMs);
  EXPECT_EQ(def.config->dns.cache_size, kDefaultDnsCacheSize);
  EXPECT_NE(describe(*def.config).find("dns.servers: system (resolv.conf)\n"), std::string::npos);

  auto r = load(std::string(kBase) +
                "[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\", \"192.0.2.1\", \"2001:db8::1\", \"[2001:db8::2]\"]\n"
                "timeout = \"2s\"\ncache_size = 500\n");
  ASSERT_TRUE(r.config) << joined(r);
  const Dns& d = r.config->dns;
  ASSERT_EQ(d.servers.size(), 5u);
  EXPECT_EQ(d.servers[0].toString(), "127.0.0.1:5353");
  EXPECT_EQ(d.servers[1].toString(), "[::1]:53");
  EXPECT_EQ(d.servers[2].toString(), "192.0.2.1:53");
  EXPECT_EQ(d.servers[3].toString(), "[2001:db8::1]:53");
  EXPECT_EQ(d.servers[4].toString(), "[2001:db8::2]:53");
  EXPECT_EQ(d.timeout_ms, 2000u);
  EXPECT_EQ(d.cache_size, 500u);
  std::string shown = describe(*r.config);
  EXPECT_NE(shown.find("dns.servers: 127.0.0.1:5353, [::1]:53, 192.0.2.1:53, [2001:db8::1]:53, [2001:db8::2]:53\n"),
            std::string::npos) << shown;
  EXPECT_NE(shown.find("dns.timeout: 2s\ndns.cache_size: 500\n"), std::string::npos) << shown;
}

TEST_F(ConfigTest, VerifySection) {
  auto def = load(kBase);
  ASSERT_TRUE(def.config) << joined(def);
  const Verify& d = def.config->verify;
  EXPECT_TRUE(d.enabled && d.spf && d.dkim && d.dmarc && d.arc);
  EXPECT_FALSE(d.dmarc_enforce);
  EXPECT_EQ(d.spf_reject, 0u);
  EXPECT_EQ(d.authserv_id, "mail.example.test");
  EXPECT_EQ(d.dkim_max_signatures, 5u);
  EXPECT_TRUE(d.dkim_honour_length);
  EXPECT_NE(describe(*def.config).find("verify: on\nverify.authserv_id: mail.example.test\nverify.spf: on (reject: none)\n"),
            std::string::npos) << describe(*def.config);

  auto r = load(std::string(kBase) +
                "[verify]\nauthserv_id = \"mx.example\"\nspf_reject = [\"fail\", \"TempError\"]\ndkim_max_signatures = 3\n"
                "dkim_length_tag = \"ignore\"\ndmarc_enforce = true\narc = false\njunk_header = \"X-Spam: Yes\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  const Verify& v = r.config->verify;
  EXPECT_EQ(v.authserv_id, "mx.example");
  EXPECT_EQ(v.spf_reject, unsigned(SpfResultSet::kFail) | unsigned(SpfResultSet::kTempError));
  EXPECT_EQ(v.dkim_max_signatures, 3u);
  EXPECT_FALSE(v.dkim_honour_length);
  EXPECT_TRUE(v.dmarc_enforce);
  EXPECT_FALSE(v.arc);
  EXPECT_EQ(v.junk_header, "X-Spam: Yes");
  std::string shown = describe(*r.config);
  EXPECT_NE(shown.find("verify.spf: on (reject: fail, temperror)\nverify.dkim: on (max 3 signatures, l= ignored)\n"
                       "verify.dmarc: on (enforced)\nverify.arc: off\nverify.junk_header: X-Spam: Yes\n"),
            std::string::npos) << shown;

  struct Bad {
    const char* text;
    const char* error;
  };
  const Bad bad[] = {
      {"[verify]\nspf_rejects = []\n", "unknown setting 'spf_rejects' in [verify] (did you mean 'spf_reject'?)"},
      {"[verify]\nspf_reject = [\"neutral\"]\n", "\"neutral\" is not one of fail, softfail, permerror, temperror"},
      {"[verify]\nspf_reject = \"fail\"\n", "'spf_reject' must be an array"},
      {"[verify]\ndkim_max_signatures = 0\n", "'dkim_max_signatures' must be from 1 to 50"},
      {"[verify]\ndkim_length_tag = \"maybe\"\n", "'dkim_length_tag' must be \"honour\" or \"ignore\""},
      {"[verify]\njunk_header = \"X-Spam Yes\"\n", "'junk_header' must be \"Name: value\""},
      {"[verify]\nauthserv_id = \"a b\"\n", "'authserv_id' must be a name without spaces"},
      {"[verify]\nenabled = 1\n", "'enabled' must be true or false"},
  };
  for (const auto& b : bad) {
    auto res = load(std::string(kBase) + b.text);
    EXPECT_FALSE(res.config) << b.text;
    EXPECT_NE(joined(res).find(b.error), std::string::npos) << b.text << "\n" << joined(res);
  }
}

TEST_F(ConfigTest, MilterSection) {
  auto r = load(std::string(kBase) +
                "[[milter]]\naddress = \"127.0.0.1:11332\"\n"
                "[[milter]]\naddress = \"unix:run/milter.sock\"\ndefault_action = \"accept\"\ncommand_timeout = \"5s\"\n"
                "stages = [\"connect\", \"rcpt\"]\nservices = [\"smtp\"]\n");
  ASSERT_TRUE(r.config) << joined(r);
  ASSERT_EQ(r.config->milters.size(), 2u);
  const Milter& a = r.config->milters[0];
  ASSERT_TRUE(a.tcp.has_value());
  EXPECT_EQ(a.tcp->toString(), "127.0.0.1:11332");
  EXPECT_EQ(a.default_action, MilterDefault::kTempFail);
  EXPECT_EQ(a.stages, unsigned(kMilterAll));
  EXPECT_TRUE(a.services.empty());
  const Milter& b = r.config->milters[1];
  EXPECT_EQ(b.unix_path, dir_ + "/run/milter.sock");
  EXPECT_EQ(b.default_action, MilterDefault::kAccept);
  EXPECT_EQ(b.command_timeout_ms, 5000u);
  EXPECT_EQ(b.stages, unsigned(kMilterConnect | kMilterRcpt));
  EXPECT_EQ(b.services, (std::vector<std::string>{"smtp"}));
  std::string shown = describe(*r.config);
  EXPECT_NE(shown.find("milter unix:run/milter.sock: default_action=accept timeouts connect=5s command=5s message=2m "
                       "stages=connect,rcpt,end-of-message services=smtp\n"),
            std::string::npos) << shown;

  struct Bad {
    const char* text;
    const char* error;
  };
  const Bad bad[] = {
      {"[[milter]]\ndefault_action = \"accept\"\n", "[[milter]] needs 'address'"},
      {"[[milter]]\naddress = \"localhost\"\n", "bad milter address \"localhost\""},
      {"[[milter]]\naddress = \"unix:\"\n", "\"unix:\" needs a socket path"},
      {"[[milter]]\naddress = \"127.0.0.1:1\"\ndefault_action = \"reject\"\n", "'default_action' must be \"tempfail\" or \"accept\""},
      {"[[milter]]\naddress = \"127.0.0.1:1\"\nstages = [\"eom\"]\n", "unknown stage \"eom\""},
      {"[[milter]]\naddress = \"127.0.0.1:1\"\nservices = [\"imap\"]\n", "\"imap\" is not an SMTP service"},
      {"[[milter]]\naddress = \"127.0.0.1:1\"\ncommand_timeout = \"10ms\"\n", "'command_timeout' must be from 100ms to 1h"},
      {"[[milter]]\naddress = \"127.0.0.1:1\"\nflags = 1\n", "unknown setting 'flags' in [[milter]]"},
      {"[milter]\naddress = \"127.0.0.1:1\"\n", "'milter' must be written as [[milter]] tables"},
  };
  for (const auto& b : bad) {
    auto res = load(std::string(kBase) + b.text);
    EXPECT_FALSE(res.config) << b.text;
    EXPECT_NE(joined(res).find(b.error), std::string::npos) << b.text << "\n" << joined(res);
  }
}

TEST_F(ConfigTest, SrsSection) {
  auto def = load(kBase);
  ASSERT_TRUE(def.config) << joined(def);
  const Srs& d = def.config->srs;
  EXPECT_FALSE(d.enabled);
  EXPECT_EQ(d.domain, "mail.example.test");   // the hostname
  EXPECT_EQ(d.secret_file, dir_ + "/data/state/srs-secret");
  EXPECT_EQ(d.max_age_days, kDefaultSrsMaxAgeDays);
  EXPECT_TRUE(d.exclude_domains.empty());
  EXPECT_NE(describe(*def.config).find("srs.enabled: false\nsrs.domain: mail.example.test\n"), std::string::npos);

  auto r = load(std::string(kBase) +
                "[srs]\nenabled = true\ndomain = \"SRS.Example.TEST.\"\nsecret_file = \"keys/srs\"\nmax_age = \"30d\"\n"
                "exclude_domains = [\"Partner.example\", \"other.example.\"]\n");
  ASSERT_TRUE(r.config) << joined(r);
  const Srs& s = r.config->srs;
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.domain, "srs.example.test");
  EXPECT_EQ(s.secret_file, dir_ + "/keys/srs");
  EXPECT_EQ(s.max_age_days, 30u);
  EXPECT_EQ(s.exclude_domains, (std::vector<std::string>{"partner.example", "other.example"}));
  std::string shown = describe(*r.config);
  EXPECT_NE(shown.find("srs.enabled: true\nsrs.domain: srs.example.test\nsrs.secret_file: " + dir_ +
                       "/keys/srs\nsrs.max_age: 30d\nsrs.exclude_domains: partner.example, other.example\n"),
            std::string::npos)
      << shown;

  struct Bad {
    const char* text;
    const char* error;
  };
  const Bad bad[] = {
      {"[srs]\nenable = true\n", ":9:1: error: unknown setting 'enable' in [srs] (did you mean 'enabled'?)"},
      {"[srs]\nenabled = \"yes\"\n", "'enabled' must be true or false"},
      {"[srs]\ndomain = \"\"\n", "'domain' must be a domain name"},
      {"[srs]\ndomain = \"a@b\"\n", "'domain' must be a domain name"},
      {"[srs]\nmax_age = \"36h\"\n", "'max_age' must be whole days"},
      {"[srs]\nmax_age = \"0d\"\n", "'max_age' must be whole days"},
      {"[srs]\nmax_age = \"1024d\"\n", "'max_age' must be whole days"},
      {"[srs]\nexclude_domains = \"x.example\"\n", "'exclude_domains' must be an array"},
      {"[srs]\nexclude_domains = [\"bad domain\"]\n", "'exclude_domains': each entry must be a domain"},
      {"[srs]\nsecret_file = \"\"\n", "'secret_file' must not be empty"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.text);
    auto e = load(std::string(kBase) + b.text);
    EXPECT_FALSE(e.config);
    EXPECT_NE(joined(e).find(b.error), std::string::npos) << joined(e);
  }
}

TEST_F(ConfigTest, OldServiceNamesWarnAndMapToSubmissions) {
  for (const char* old : {"smtps", "ssmtp"}) {
    std::string text = std::string(kBase) + "[[listener]]\nservice = \"" + old + "\"\naddress = \"127.0.0.1:465\"\n";
    text += "[tls]\ncert = \"" + std::string(POSTERN_SOURCE_DIR) + "/tests/data/tls/cert.pem\"\nkey = \"" +
            std::string(POSTERN_SOURCE_DIR) + "/tests/data/tls/key.pem\"\n";
    auto r = load(text);
    ASSERT_TRUE(r.config) << joined(r);
    EXPECT_EQ(r.config->listeners[1].name, "submissions");
    EXPECT_EQ(r.config->listeners[1].service_as_written, old);
    EXPECT_NE(joined(r).find(":9:11: warning: service '" + std::string(old) +
                             "' is an old name: it is now 'submissions' (port 465, implicit TLS)"),
              std::string::npos)
        << joined(r);
  }
}

TEST_F(ConfigTest, MetricsListener) {
  // Loopback: valid, no TLS needed, no warning; PROXY modes accepted like on every service.
  std::string text = std::string(kBase) + "[proxy_protocol]\ntrusted_networks = [\"127.0.0.1/32\"]\n" +
                     "[[listener]]\nservice = \"Metrics\"\naddress = \"127.0.0.1:9465\"\nproxy_protocol = \"required\"\n";
  auto r = load(text);
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_EQ(joined(r).find("listener 'metrics'"), std::string::npos) << joined(r);   // base: smtp without TLS
  EXPECT_EQ(joined(r).find("metrics listener"), std::string::npos) << joined(r);
  ASSERT_EQ(r.config->listeners.size(), 2u);
  const Listener& m = r.config->listeners[1];
  EXPECT_EQ(m.name, "metrics");
  EXPECT_EQ(m.service->service, Service::kMetrics);
  EXPECT_EQ(m.service->standard_port, 9465);
  EXPECT_FALSE(m.service->implicit_tls || m.service->offers_starttls || m.service->auth_required);
  EXPECT_EQ(m.proxy, ProxyMode::kRequired);
  EXPECT_NE(describe(*r.config).find("listener metrics"), std::string::npos) << describe(*r.config);
  EXPECT_NE(describe(*r.config).find("tls: none"), std::string::npos);

  // Elsewhere: a warning that it is reachable and unauthenticated.
  r = load(std::string(kBase) + "[[listener]]\nservice = \"metrics\"\naddress = \"0.0.0.0:9465\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_NE(joined(r).find(":8:1: warning: metrics listener on 0.0.0.0:9465 is reachable from the network"),
            std::string::npos)
      << joined(r);

  // Without an address: loopback on the canonical port.
  r = load(std::string(kBase) + "[[listener]]\nservice = \"metrics\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_EQ(r.config->listeners[1].address.toString(), "127.0.0.1:9465");

  // A misspelling suggests it.
  r = load(std::string(kBase) + "[[listener]]\nservice = \"metric\"\naddress = \"127.0.0.1:9465\"\n");
  EXPECT_FALSE(r.config);
  EXPECT_NE(joined(r).find("unknown service 'metric' (did you mean 'metrics'?)"), std::string::npos) << joined(r);
}

TEST_F(ConfigTest, ProxyWarnings) {
  std::string text = std::string(kBase) + "[proxy_protocol]\ntrusted_networks = [\"0.0.0.0/0\"]\n";
  auto r = load(text);
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_NE(joined(r).find(":9:21: warning: 'trusted_networks' contains 0.0.0.0/0"), std::string::npos) << joined(r);
  EXPECT_NE(joined(r).find(":8:1: warning: [proxy_protocol] settings apply to no listener"), std::string::npos)
      << joined(r);

  std::string required = std::string(kBase).replace(std::string(kBase).find("address"), 0,
                                                    "proxy_protocol = \"required\"\ntrusted_networks = [\"10.0.0.0/8\"]\n");
  r = load(required);
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_NE(joined(r).find("requires PROXY headers but listens on loopback"), std::string::npos) << joined(r);
}

TEST_F(ConfigTest, PerListenerTrustedNetworksOverrideGlobal) {
  std::string text = std::string(kBase).replace(std::string(kBase).find("address"), 0,
                                                "proxy_protocol = \"mixed\"\ntrusted_networks = [\"127.0.0.2/32\"]\n");
  auto r = load(text);
  ASSERT_TRUE(r.config) << joined(r);
  const auto& l = r.config->listeners[0];
  EXPECT_TRUE(l.trusted_networks_overridden);
  ASSERT_EQ(l.trusted_networks.size(), 1u);
  EXPECT_EQ(l.trusted_networks[0].toString(), "127.0.0.2/32");
  EXPECT_NE(describe(*r.config).find("trusted_networks: 127.0.0.2/32 (listener)"), std::string::npos);
}

}  // namespace
}  // namespace postern::config
