// planImport (src/import/dms_import.h): what a docker-mailserver folder becomes, with the
// features of the configuration switched on and off, and that no secret reaches the report.
#include "import/dms_import.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace postern::import {
namespace {

bool hasLine(const Plan& p, const std::string& needle) {
  return std::any_of(p.report.begin(), p.report.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

std::string allReport(const Plan& p) {
  std::string s;
  for (const auto& l : p.report) s += l + "\n";
  return s;
}

const OutputFile* outFile(const Plan& p, const std::string& path) {
  for (const auto& f : p.files)
    if (f.path == path) return &f;
  return nullptr;
}

ImportInput base() {
  ImportInput in;
  in.files["postfix-accounts.cf"] =
      "a@example.com|{SHA512-CRYPT}$6$4stBSjDznfa8DUMa$slmAiZ6XXm1eZT03mgX61spMnS5f."
      "iIYtytFdEkytRrEN3iuKh7jCCknKBoq28Yb.99fg3yRw.mozye2xO7551\n";
  in.has_env = true;
  in.env_label = "mailserver.env";
  in.env_text = "OVERRIDE_HOSTNAME=mail.example.com\n";
  return in;
}

// A manual certificate inside the config folder, as DMS's docs set it up.
ImportInput withTls(ImportInput in) {
  in.env_text +=
      "SSL_TYPE=manual\nSSL_CERT_PATH=/tmp/docker-mailserver/ssl/cert.pem\n"
      "SSL_KEY_PATH=/tmp/docker-mailserver/ssl/key.pem\n";
  in.files["ssl/cert.pem"] = "CERT";
  in.files["ssl/key.pem"] = "KEY";
  return in;
}

TEST(ImportPlan, SmtpsOverrideBecomesSubmissionsWithWarning) {
  ImportInput in = withTls(base());
  in.files["postfix-master.cf"] = "smtps/inet/smtpd_upstream_proxy_protocol=haproxy\n";
  Plan p = planImport(in, Features{});
  EXPECT_TRUE(hasLine(p,
                      "mapped  postfix-master.cf:1  smtps/inet/smtpd_upstream_proxy_protocol=haproxy -> "
                      "[[listener]] service=\"submissions\" proxy_protocol=\"required\""))
      << allReport(p);
  EXPECT_TRUE(hasLine(p, "warning  postfix-master.cf:1  'smtps' is the old name of 'submissions' (port 465"))
      << allReport(p);
  EXPECT_NE(p.toml.find("service = \"submissions\"\naddress = \"0.0.0.0:465\"\nproxy_protocol = \"required\""),
            std::string::npos)
      << p.toml;
  EXPECT_NE(p.toml.find("[tls]   # mailserver.env:2\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\""),
            std::string::npos)
      << p.toml;
  ASSERT_NE(outFile(p, "tls/key.pem"), nullptr);
  EXPECT_EQ(outFile(p, "tls/key.pem")->content, "KEY");
}

TEST(ImportPlan, WithoutCertificateTlsListenersAreCommentedOut) {
  ImportInput in = base();
  in.files["postfix-master.cf"] = "submissions/inet/smtpd_upstream_proxy_protocol=haproxy\n";
  Plan p = planImport(in, Features{});
  EXPECT_NE(p.toml.find("# service = \"submissions\"\n# address = \"0.0.0.0:465\""), std::string::npos) << p.toml;
  EXPECT_NE(p.toml.find("\nservice = \"smtp\"\naddress = \"0.0.0.0:25\""), std::string::npos) << p.toml;
  EXPECT_TRUE(hasLine(p, "warning  no certificate")) << allReport(p);
}

TEST(ImportPlan, MasterOverrideBeatsMainCf) {
  ImportInput in = withTls(base());
  in.files["postfix-main.cf"] = "smtpd_upstream_proxy_protocol = haproxy\n";
  in.files["postfix-master.cf"] = "submission/inet/smtpd_upstream_proxy_protocol=\n";
  Plan p = planImport(in, Features{});
  EXPECT_NE(p.toml.find("service = \"smtp\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = \"required\""),
            std::string::npos)
      << p.toml;
  EXPECT_NE(p.toml.find("\nservice = \"submission\"\naddress = \"0.0.0.0:587\"\nproxy_protocol = \"off\""),
            std::string::npos)
      << p.toml;
  EXPECT_NE(p.toml.find("\nservice = \"submissions\"\naddress = \"0.0.0.0:465\"\nproxy_protocol = \"required\""),
            std::string::npos)
      << p.toml;
}

TEST(ImportPlan, RoutesWhenTheConfigurationHasThem) {
  ImportInput in = base();
  in.env_text += "RELAY_HOST=smtp.relay.example\nRELAY_PORT=587\nRELAY_USER=relayuser\nRELAY_PASSWORD=hunter2secret\n";
  in.files["postfix-relaymap.cf"] = "@example.org [mx.example.net]:465\n@example.com\n";
  in.files["postfix-sasl-password.cf"] = "@example.org orguser:orgsecret99\n@other.example x:othersecret77\n";

  Plan off = planImport(in, Features{});
  EXPECT_TRUE(hasLine(off,
                      "not carried over  mailserver.env:2  RELAY_HOST=smtp.relay.example: outbound relay routes "
                      "are not implemented yet (issue 12)"))
      << allReport(off);
  EXPECT_TRUE(hasLine(off, "not carried over  postfix-relaymap.cf:1")) << allReport(off);
  EXPECT_EQ(off.toml.find("[[route]]"), std::string::npos);
  EXPECT_EQ(outFile(off, "relay-auth"), nullptr);

  Features f;
  f.routes = true;
  Plan on = planImport(in, f);
  EXPECT_NE(on.toml.find("relay = \"smtp.relay.example:587\"\ntls = \"starttls\"\nauth_file = \"relay-auth\""),
            std::string::npos)
      << on.toml;
  EXPECT_NE(on.toml.find("sender_domains = [\"example.org\"]\nrelay = \"mx.example.net:465\"\ntls = \"implicit\"\n"
                         "auth_file = \"relay-auth-example.org\""),
            std::string::npos)
      << on.toml;
  const OutputFile* auth = outFile(on, "relay-auth");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->content, "relayuser:hunter2secret\n");
  EXPECT_EQ(auth->mode, 0600u);
  ASSERT_NE(outFile(on, "relay-auth-example.org"), nullptr);
  EXPECT_TRUE(hasLine(on, "not carried over  postfix-relaymap.cf:2  @example.com")) << allReport(on);
  EXPECT_TRUE(hasLine(on, "not carried over  postfix-sasl-password.cf:2")) << allReport(on);
  for (const Plan* p : {&off, &on}) {
    std::string r = allReport(*p);
    for (const char* secret : {"hunter2secret", "orgsecret99", "othersecret77", "$6$4stBSjDznfa8DUMa"})
      EXPECT_EQ(r.find(secret), std::string::npos) << secret;
  }
}

TEST(ImportPlan, RelayhostOverridesDefaultRelayHostAndComesLast) {
  ImportInput in = base();
  in.env_text += "DEFAULT_RELAY_HOST=[old.relay.example]:25\n";
  in.files["postfix-main.cf"] = "relayhost = [smtp.relay.example]:587\n";
  in.files["postfix-relaymap.cf"] = "@example.org [mx.example.net]:587\n";
  Plan off = planImport(in, Features{});
  EXPECT_TRUE(hasLine(off,
                      "not carried over  postfix-main.cf:1  relayhost = [smtp.relay.example]:587: outbound relay "
                      "routes are not implemented yet (issue 12)"))
      << allReport(off);
  Features f;
  f.routes = true;
  Plan on = planImport(in, f);
  EXPECT_TRUE(hasLine(on,
                      "mapped  postfix-main.cf:1  relayhost = [smtp.relay.example]:587 -> [[route]] relay = "
                      "\"smtp.relay.example:587\""))
      << allReport(on);
  EXPECT_TRUE(hasLine(on,
                      "not carried over  mailserver.env:2  DEFAULT_RELAY_HOST=[old.relay.example]:25: overridden by "
                      "relayhost at postfix-main.cf:1"))
      << allReport(on);
  size_t domain_route = on.toml.find("sender_domains = [\"example.org\"]");
  size_t default_route = on.toml.find("relay = \"smtp.relay.example:587\"");
  ASSERT_NE(domain_route, std::string::npos) << on.toml;
  ASSERT_NE(default_route, std::string::npos) << on.toml;
  EXPECT_LT(domain_route, default_route) << "first match wins: the default route must come last";
}

TEST(ImportPlan, TrustedProxiesFromDovecotThenMynetworks) {
  ImportInput in = withTls(base());
  in.files["postfix-main.cf"] = "mynetworks = 127.0.0.0/8 [::1]/128 172.18.0.0/16\n";
  in.files["dovecot.cf"] = "haproxy_trusted_networks = 10.1.2.3 172.18.0.0/16\n";

  Plan direct = planImport(in, Features{});  // no listener behind a proxy
  EXPECT_TRUE(hasLine(direct,
                      "not carried over  dovecot.cf:1  haproxy_trusted_networks = 10.1.2.3 172.18.0.0/16: no "
                      "SMTP listener uses the PROXY protocol"))
      << allReport(direct);
  EXPECT_TRUE(hasLine(direct, "not carried over  postfix-main.cf:1  mynetworks = ")) << allReport(direct);
  EXPECT_EQ(direct.toml.find("[proxy_protocol]"), std::string::npos) << direct.toml;

  in.files["postfix-master.cf"] = "submissions/inet/smtpd_upstream_proxy_protocol=haproxy\n";
  Plan proxied = planImport(in, Features{});
  EXPECT_TRUE(hasLine(proxied, "mapped  dovecot.cf:1  haproxy_trusted_networks")) << allReport(proxied);
  EXPECT_NE(proxied.toml.find("trusted_networks = [\"10.1.2.3\", \"172.18.0.0/16\"]"), std::string::npos)
      << proxied.toml;
  EXPECT_TRUE(hasLine(proxied,
                      "not carried over  postfix-main.cf:1  mynetworks = 127.0.0.0/8 ::1/128 172.18.0.0/16: "
                      "the proxies come from dovecot.cf:1"))
      << allReport(proxied);

  in.files.erase("dovecot.cf");
  Plan mynet = planImport(in, Features{});
  EXPECT_TRUE(hasLine(mynet, "mapped  postfix-main.cf:1  mynetworks")) << allReport(mynet);
  EXPECT_TRUE(hasLine(mynet, "warning  postfix-main.cf:1  mynetworks is used as the list of proxies"))
      << allReport(mynet);
  EXPECT_NE(mynet.toml.find("trusted_networks = [\"127.0.0.0/8\", \"::1/128\", \"172.18.0.0/16\"]"), std::string::npos)
      << mynet.toml;
}

TEST(ImportPlan, TlsFromEachSslType) {
  ImportInput le = base();
  le.env_text += "SSL_TYPE=letsencrypt\nSSL_CERT_PATH=/ignored.pem\n";
  Plan p = planImport(le, Features{});
  EXPECT_NE(p.toml.find("cert = \"/etc/letsencrypt/live/mail.example.com/fullchain.pem\"\n"
                        "key = \"/etc/letsencrypt/live/mail.example.com/privkey.pem\""),
            std::string::npos)
      << p.toml;
  EXPECT_TRUE(
      hasLine(p, "not carried over  mailserver.env:3  SSL_CERT_PATH=/ignored.pem: only used by SSL_TYPE=manual"))
      << allReport(p);

  ImportInput ss = base();
  ss.env_text += "SSL_TYPE=self-signed\n";
  ss.files["ssl/mail.example.com-cert.pem"] = "C";
  ss.files["ssl/mail.example.com-key.pem"] = "K";
  ss.files["ssl/demoCA/cacert.pem"] = "CA";
  p = planImport(ss, Features{});
  ASSERT_NE(outFile(p, "tls/key.pem"), nullptr);
  EXPECT_EQ(outFile(p, "tls/key.pem")->content, "K");
  EXPECT_TRUE(hasLine(p, "not carried over  ssl/demoCA/cacert.pem  the whole file: not named by the SSL_* variables"))
      << allReport(p);

  ImportInput none = base();
  none.env_text += "SSL_CERT_PATH=/tmp/docker-mailserver/ssl/cert.pem\n";
  none.files["ssl/cert.pem"] = "C";
  p = planImport(none, Features{});
  EXPECT_TRUE(hasLine(p,
                      "not carried over  mailserver.env:2  SSL_CERT_PATH=/tmp/docker-mailserver/ssl/cert.pem: "
                      "SSL_TYPE is not set"))
      << allReport(p);
  EXPECT_TRUE(hasLine(p, "not carried over  ssl/cert.pem  the whole file: no SSL_TYPE uses it")) << allReport(p);
  EXPECT_EQ(p.toml.find("\n[tls]"), std::string::npos);

  ImportInput outside = base();
  outside.env_text +=
      "SSL_TYPE=manual\nSSL_CERT_PATH=/tmp/dms/custom-certs/c.pem\nSSL_KEY_PATH=/tmp/dms/custom-certs/k.pem\n";
  p = planImport(outside, Features{});
  EXPECT_NE(p.toml.find("cert = \"/tmp/dms/custom-certs/c.pem\""), std::string::npos) << p.toml;
  EXPECT_TRUE(hasLine(p, "warning  mailserver.env:3  /tmp/dms/custom-certs/c.pem is a path inside the container"))
      << allReport(p);
}

TEST(ImportPlan, PrecedenceAndRepeatedVariables) {
  ImportInput in = base();
  in.env_text += "POSTFIX_MESSAGE_SIZE_LIMIT=1000000\nLOG_LEVEL=warn\nLOG_LEVEL=trace\n";
  in.files["postfix-main.cf"] = "message_size_limit = 2000000\nmyhostname = mx.example.com\n";
  Plan p = planImport(in, Features{});
  EXPECT_NE(p.toml.find("max_message_size = 2000000"), std::string::npos) << p.toml;
  EXPECT_NE(p.toml.find("hostname = \"mx.example.com\""), std::string::npos) << p.toml;
  EXPECT_NE(p.toml.find("log_level = \"debug\""), std::string::npos) << p.toml;
  EXPECT_TRUE(hasLine(p,
                      "not carried over  mailserver.env:1  OVERRIDE_HOSTNAME=mail.example.com: overridden by "
                      "myhostname at postfix-main.cf:2"))
      << allReport(p);
  EXPECT_TRUE(hasLine(p,
                      "not carried over  mailserver.env:2  POSTFIX_MESSAGE_SIZE_LIMIT=1000000: overridden by "
                      "message_size_limit at postfix-main.cf:1"))
      << allReport(p);
  EXPECT_TRUE(hasLine(p, "not carried over  mailserver.env:3  LOG_LEVEL=warn: set again at line 4")) << allReport(p);
  EXPECT_TRUE(hasLine(p, "mapped  mailserver.env:4  LOG_LEVEL=trace -> log_level = \"debug\"")) << allReport(p);
}

TEST(ImportPlan, NoEnvFileAndNoAccountsFile) {
  ImportInput in;
  Plan p = planImport(in, Features{});
  EXPECT_TRUE(hasLine(p, "note  no mailserver.env in DIR or its parent")) << allReport(p);
  EXPECT_TRUE(hasLine(p, "warning  no postfix-accounts.cf")) << allReport(p);
  EXPECT_TRUE(hasLine(p, "warning  no hostname found")) << allReport(p);
  EXPECT_NE(p.toml.find("hostname = \"mail.example.invalid\"   # CHANGE"), std::string::npos) << p.toml;
  ASSERT_NE(outFile(p, "accounts.cf"), nullptr);
  EXPECT_EQ(p.not_carried, 0u);
}

TEST(ImportPlan, BadAccountLineIsCommentedOutAndReported) {
  ImportInput in = base();
  in.files["postfix-accounts.cf"] += "b@example.com|{PLAIN}secretplain\nnot-an-address|{SHA512-CRYPT}$6$x$y\n";
  Plan p = planImport(in, Features{});
  EXPECT_TRUE(hasLine(p, "mapped  postfix-accounts.cf:1  a@example.com -> accounts.cf ({SHA512-CRYPT} hash kept"))
      << allReport(p);
  EXPECT_TRUE(hasLine(p, "not carried over  postfix-accounts.cf:2  b@example.com: ")) << allReport(p);
  EXPECT_TRUE(hasLine(p, "not carried over  postfix-accounts.cf:3  not-an-address: ")) << allReport(p);
  const OutputFile* acc = outFile(p, "accounts.cf");
  ASSERT_NE(acc, nullptr);
  EXPECT_NE(acc->content.find("\n# not carried over by postern import: b@example.com|{PLAIN}"), std::string::npos);
  EXPECT_EQ(allReport(p).find("secretplain"), std::string::npos);
}

TEST(ImportPlan, FeaturesWrittenOnlyWhenAccepted) {
  ImportInput in = base();
  in.files["dovecot-quotas.cf"] = "a@example.com:50M\n";
  in.files["opendkim/keys/example.com/mail.private"] = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n";
  Plan off = planImport(in, Features{});
  EXPECT_TRUE(
      hasLine(off, "not carried over  dovecot-quotas.cf:1  a@example.com:50M: mailbox quotas are not implemented yet"));
  EXPECT_TRUE(hasLine(off,
                      "not carried over  opendkim/keys/example.com/mail.private  DKIM key for example.com selector "
                      "mail: DKIM signing is not implemented yet"));
  EXPECT_EQ(off.toml.find("[server]"), std::string::npos);
  Features all{true, true, true, true, false, false};
  in.files["dovecot-quotas.cf"] = "a@example.com:50M\nb@example.com:10%\n";
  Plan on = planImport(in, all);
  EXPECT_NE(on.toml.find("quotas = \"quotas.cf\""), std::string::npos);
  ASSERT_NE(outFile(on, "quotas.cf"), nullptr);
  EXPECT_EQ(outFile(on, "quotas.cf")->content, "a@example.com:50M\n");   // only what Postern parses
  EXPECT_TRUE(hasLine(on, "not carried over  dovecot-quotas.cf:2  b@example.com:10%: a size Postern reads"))
      << allReport(on);
  EXPECT_NE(on.toml.find("[dkim]\nkeys = \"dkim\""), std::string::npos);
  EXPECT_NE(on.toml.find("\nuser = \"postern\"\ngroup = \"postern\"\n"), std::string::npos) << on.toml;
  EXPECT_TRUE(hasLine(on, "warning  [server] user = \"postern\": the server gives the Maildir folders"))
      << allReport(on);
  ASSERT_NE(outFile(on, "dkim/example.com/mail.key"), nullptr);
  EXPECT_EQ(outFile(on, "dkim/example.com/mail.key")->mode, 0600u);
}

TEST(ImportPlan, DefaultValuedAndEmptyVariablesNeedNoLine) {
  ImportInput in = base();
  in.env_text += "ENABLE_CLAMAV=0\nONE_DIR=1\nTZ=\nPOSTMASTER_ADDRESS=\nENABLE_CLAMAV_TYPO=1\nENABLE_SRS=1\n";
  Plan p = planImport(in, Features{});
  std::string r = allReport(p);
  EXPECT_EQ(r.find("ENABLE_CLAMAV=0"), std::string::npos) << r;
  EXPECT_EQ(r.find("ONE_DIR"), std::string::npos) << r;
  EXPECT_EQ(r.find("TZ="), std::string::npos) << r;
  EXPECT_TRUE(hasLine(p, "not carried over  mailserver.env:6  ENABLE_CLAMAV_TYPO=1: not a docker-mailserver variable"))
      << r;
  EXPECT_TRUE(hasLine(p, "not carried over  mailserver.env:7  ENABLE_SRS=1: SRS")) << r;
}

TEST(ImportPlan, RegexpAndLocalAliasesConvertWhenExact) {
  ImportInput in = base();
  in.files["postfix-virtual.cf"] = "info@example.com a@example.com\n";
  in.files["postfix-aliases.cf"] = "root: a@example.com\ndevnull: /dev/null\n";
  in.files["postfix-regexp.cf"] = "/^sales@example\\.com$/ a@example.com\n/^.*-bounce@example\\.com$/ a@example.com\n";
  Plan p = planImport(in, Features{});
  const OutputFile* v = outFile(p, "virtual.cf");
  ASSERT_NE(v, nullptr);
  EXPECT_NE(v->content.find("info@example.com a@example.com\n"), std::string::npos);
  EXPECT_NE(v->content.find("root@mail.example.com a@example.com\n"), std::string::npos);
  EXPECT_NE(v->content.find("sales@example.com a@example.com\n"), std::string::npos);
  EXPECT_TRUE(hasLine(p, "not carried over  postfix-aliases.cf:2  devnull: /dev/null")) << allReport(p);
  EXPECT_TRUE(hasLine(p, "not carried over  postfix-regexp.cf:2")) << allReport(p);
}

}  // namespace
}  // namespace postern::import
