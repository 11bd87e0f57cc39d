// postern import: the settings of mailserver.env (see importer.h).
#include "import/importer.h"

namespace postern::import::detail {

// ---- mailserver.env ----------------------------------------------------------------

namespace {

// Variables Postern has no use for, with DMS's default (a variable at its default needs no
// report line) and the reason. Variables handled by code are not listed here.
struct EnvRule {
  std::string_view name;
  std::string_view dms_default;
  std::string_view reason;
};
const EnvRule kEnvRules[] = {
    {"ACCOUNT_PROVISIONER", "FILE", kAccountSourceReason},
    {"DMS_VMAIL_UID", "5000",
     "mail files belong to the user Postern runs as; run it as this uid to share the Maildirs with Dovecot"},
    {"DMS_VMAIL_GID", "5000",
     "mail files belong to the group Postern runs as; run it as this gid to share the Maildirs with Dovecot"},
    {"SUPERVISOR_LOGLEVEL", "warn", "Postern runs no supervisor"},
    {"ENABLE_UPDATE_CHECK", "1", "Postern does not check for updates"},
    {"UPDATE_CHECK_INTERVAL", "1d", "Postern does not check for updates"},
    {"TZ", "", "set TZ in the service's environment; it is not a Postern setting"},
    {"NETWORK_INTERFACE", "eth0", "listen addresses are set on each [[listener]]"},
    {"ENABLE_SRS", "0", kSrsReason},
    {"SRS_SENDER_CLASSES", "envelope_sender", kSrsReason},
    {"SRS_EXCLUDE_DOMAINS", "", kSrsReason},
    {"SRS_SECRET", "", kSrsReason},
    {"SRS_DOMAINNAME", "", kSrsReason},
    {"ENABLE_OPENDKIM", "1", "Postern has no switch for DKIM signing; it follows the [dkim] section"},
    {"ENABLE_OPENDMARC", "1",
     "DMARC is checked by [verify] dmarc (on by default, recorded in Authentication-Results; applied with "
     "dmarc_enforce = true)"},
    {"ENABLE_POLICYD_SPF", "1",
     "SPF is checked by [verify] spf (on by default, recorded); DMS's policyd-spf refused SPF fail: [verify] "
     "spf_reject = [\"fail\"] does the same"},
    {"ENABLE_CLAMAV", "0", kFilterReason},
    {"CLAMAV_MESSAGE_SIZE_LIMIT", "", kFilterReason},
    {"ENABLE_RSPAMD", "0", kFilterReason},
    {"ENABLE_RSPAMD_REDIS", "", kFilterReason},
    {"RSPAMD_LEARN", "0", kFilterReason},
    {"RSPAMD_CHECK_AUTHENTICATED", "0", kFilterReason},
    {"RSPAMD_GREYLISTING", "0", kFilterReason},
    {"RSPAMD_HFILTER", "1", kFilterReason},
    {"RSPAMD_HFILTER_HOSTNAME_UNKNOWN_SCORE", "6", kFilterReason},
    {"RSPAMD_NEURAL", "0", kFilterReason},
    {"ENABLE_AMAVIS", "1", kFilterReason},
    {"AMAVIS_LOGLEVEL", "0", kFilterReason},
    {"ENABLE_SPAMASSASSIN", "0", kFilterReason},
    {"ENABLE_SPAMASSASSIN_KAM", "0", kFilterReason},
    {"SPAMASSASSIN_SPAM_TO_INBOX", "1", kFilterReason},
    {"MOVE_SPAM_TO_JUNK", "1",
     "set [verify] junk_header = \"X-Spam: Yes\" to file what the spam filter (a [[milter]]) marks into Junk"},
    {"MARK_SPAM_AS_READ", "0", kFilterReason},
    {"SA_TAG", "2.0", kFilterReason},
    {"SA_TAG2", "6.31", kFilterReason},
    {"SA_KILL", "10.0", kFilterReason},
    {"SA_SPAM_SUBJECT", "***SPAM*****", kFilterReason},
    {"ENABLE_POSTGREY", "0", kFilterReason},
    {"POSTGREY_DELAY", "300", kFilterReason},
    {"POSTGREY_MAX_AGE", "35", kFilterReason},
    {"POSTGREY_TEXT", "Delayed by Postgrey", kFilterReason},
    {"POSTGREY_AUTO_WHITELIST_CLIENTS", "5", kFilterReason},
    {"VIRUSMAILS_DELETE_DELAY", "7", kFilterReason},
    {"ENABLE_DNSBL", "0",
     "DMS's built-in DNSBL list is not copied: name the zones you want under [protect.dnsbl] (docs/protection.md)"},
    {"FAIL2BAN_BLOCKTYPE", "drop",
     "a ban closes the client's connections at accept; there is no firewall rule to choose"},
    {"ENABLE_MANAGESIEVE", "0", "Sieve filters are not implemented"},
    {"POSTSCREEN_ACTION", "enforce",
     "postscreen has no equivalent; pregreeting clients are handled by [smtp] greeting_delay and [protect] "
     "early_talkers"},
    {"POSTFIX_DAGENT", "", "local delivery always writes the Maildir under [mailbox] root"},
    {"POSTFIX_MAILBOX_SIZE_LIMIT", "0", kQuotaReason},
    {"ENABLE_QUOTAS", "1", kQuotaReason},
    {"PFLOGSUMM_TRIGGER", "", kLogReason},
    {"PFLOGSUMM_RECIPIENT", "", kLogReason},
    {"PFLOGSUMM_SENDER", "", kLogReason},
    {"LOGWATCH_INTERVAL", "", kLogReason},
    {"LOGWATCH_RECIPIENT", "", kLogReason},
    {"LOGWATCH_SENDER", "", kLogReason},
    {"REPORT_RECIPIENT", "", kLogReason},
    {"REPORT_SENDER", "", kLogReason},
    {"LOGROTATE_INTERVAL", "weekly", kLogReason},
    {"LOGROTATE_COUNT", "4", kLogReason},
    {"POSTFIX_REJECT_UNKNOWN_CLIENT_HOSTNAME", "0", "Postern does not check clients' reverse DNS"},
    {"DOVECOT_INET_PROTOCOLS", "all", kImapReason},
    {"DOVECOT_MAILBOX_FORMAT", "maildir", "Postern reads and writes Maildir only"},
    {"DOVECOT_TLS", "", kAccountSourceReason},
    {"ENABLE_MTA_STS", "0",
     "nothing to set: Postern honours MTA-STS on outbound delivery by default ([queue] mta_sts = true)"},
    {"ENABLE_FETCHMAIL", "0", kFetchReason},
    {"FETCHMAIL_POLL", "300", kFetchReason},
    {"FETCHMAIL_PARALLEL", "0", kFetchReason},
    {"ENABLE_GETMAIL", "0", kFetchReason},
    {"GETMAIL_POLL", "5", kFetchReason},
    {"ENABLE_OAUTH2", "", kAccountSourceReason},
    {"ENABLE_SASLAUTHD", "0", kAccountSourceReason},
    {"ONE_DIR", "1",
     "Postern keeps its state under data_dir and mail under [mailbox] root; there is no ONE_DIR switch"},
    {"PERMIT_DOCKER", "none",
     "Postern lets no client relay because of its address: give applications an account and use submission with "
     "AUTH (docs/migration-docker-mailserver.md, PERMIT_DOCKER)"},
    {"POSTMASTER_ADDRESS", "",
     "Postern has no postmaster setting: make sure postmaster@<domain> exists as an account or an alias"},
};
// Families of variables that share one reason.
const std::pair<std::string_view, std::string_view> kEnvPrefixes[] = {
    {"LDAP_", kAccountSourceReason},
    {"OAUTH2_", kAccountSourceReason},
    {"SASLAUTHD_", kAccountSourceReason},
    {"DOVECOT_", kAccountSourceReason},
    {"SRS_", kSrsReason},
    {"RSPAMD_", kFilterReason},
    {"SA_", kFilterReason},
    {"POSTGREY_", kFilterReason},
    {"CLAMAV_", kFilterReason},
    {"FETCHMAIL_", kFetchReason},
    {"GETMAIL_", kFetchReason},
    {"LOGWATCH_", kLogReason},
    {"PFLOGSUMM_", kLogReason},
};

std::string envShown(const EnvVar& v) {
  return isSecretName(v.name) ? fmt::format("{}=(not shown)", v.name) : fmt::format("{}={}", v.name, shown(v.value));
}

}  // namespace

void Importer::doEnv() {
  if (!in_.has_env) {
    note("", "no mailserver.env in DIR or its parent: DMS's defaults are assumed");
    doRelayEnv();  // postfix-main.cf's relayhost still needs an answer
    return;
  }
  const std::string& label = in_.env_label;
  note("",
       fmt::format("environment read from {} (variables set only in compose.yaml or the shell are not seen)", label));
  EnvFile env = parseEnvFile(in_.env_text);
  for (const auto& b : env.bad) notCarried(label, b.line, shown(b.text), b.reason);
  for (const auto& v : env.vars) {
    auto it = env_.find(v.name);
    if (it != env_.end())
      notCarried(label, it->second.line, envShown(it->second),
                 fmt::format("set again at line {}; that value counts", v.line));
    env_[v.name] = v;
  }
  // The hostname first: SSL_TYPE=letsencrypt finds its folder by it.
  if (env_.count("OVERRIDE_HOSTNAME")) {
    env_done_.insert("OVERRIDE_HOSTNAME");
    doEnvVar(env_["OVERRIDE_HOSTNAME"]);
  }
  doTls();
  doRelayEnv();
  for (const auto& [name, v] : env_)
    if (!env_done_.count(name)) doEnvVar(v);
}

void Importer::doEnvVar(const EnvVar& v) {
  const std::string& label = in_.env_label;
  const std::string what = envShown(v);
  const std::string& n = v.name;
  if (v.value.empty()) return;  // unset: DMS's default
  if (n == "OVERRIDE_HOSTNAME") {
    if (!hostname_src_.empty()) {
      notCarried(label, v.line, what, fmt::format("overridden by myhostname at {}", hostname_src_));
      return;
    }
    hostname_ = v.value;
    hostname_src_ = at(label, v.line);
    mapped(label, v.line, what, fmt::format("hostname = {}", tomlString(v.value)));
  } else if (n == "LOG_LEVEL" || n == "DMS_DEBUG") {
    std::string level = v.value;
    if (n == "DMS_DEBUG") {
      if (v.value == "0") return;
      if (env_.count("LOG_LEVEL") && !env_["LOG_LEVEL"].value.empty()) {
        notCarried(label, v.line, what, "LOG_LEVEL is set and takes precedence (DMS_DEBUG is its old form)");
        return;
      }
      level = "debug";
    }
    if (level == "trace") level = "debug";
    if (level != "debug" && level != "info" && level != "warn" && level != "error") {
      notCarried(label, v.line, what, "not a log level (trace, debug, info, warn, error)");
      return;
    }
    if (n == "LOG_LEVEL" && v.value == "info") return;
    log_level_ = level;
    log_src_ = at(label, v.line);
    mapped(label, v.line, what, fmt::format("log_level = {}", tomlString(level)));
  } else if (n == "POSTFIX_MESSAGE_SIZE_LIMIT") {
    auto size = parseDecimal(v.value, UINT64_MAX >> 1);
    if (!max_size_src_.empty()) {
      notCarried(label, v.line, what, fmt::format("overridden by message_size_limit at {}", max_size_src_));
    } else if (!size) {
      notCarried(label, v.line, what, "not a number of bytes");
    } else if (*size == 0) {
      notCarried(label, v.line, what,
                 fmt::format("0 (no limit) does not exist in Postern; the default of 25 MiB applies (at most {} MiB)",
                             config::kMaxMessageSizeLimit / (1024 * 1024)));
    } else if (*size > config::kMaxMessageSizeLimit) {
      notCarried(label, v.line, what, fmt::format("above Postern's maximum of {} bytes", config::kMaxMessageSizeLimit));
    } else {
      max_size_ = *size;
      max_size_src_ = at(label, v.line);
      mapped(label, v.line, what, fmt::format("[smtp] max_message_size = {}", *size));
    }
  } else if (n == "ENABLE_FAIL2BAN") {
    if (v.value == "0") return;
    mapped(label, v.line, what, "[protect] (built in and on by default, keyed by the real client address)");
  } else if (n == "SPOOF_PROTECTION") {
    if (v.value == "0") return;
    mapped(label, v.line, what, "(always on: authenticated users send only as their own address or their aliases)");
  } else if (n == "TLS_LEVEL") {
    if (v.value == "modern" || v.value == "intermediate")
      mapped(label, v.line, what, "(Postern's default: TLS 1.2 and later with the intermediate cipher set)");
    else
      notCarried(label, v.line, what, "not a DMS TLS level (modern, intermediate)");
  } else if (n == "SMTP_ONLY") {
    if (v.value == "0") return;
    imap_on_ = pop3_on_ = false;
    mapped(label, v.line, what, "no IMAP or POP3 listeners");
  } else if (n == "ENABLE_IMAP" || n == "ENABLE_POP3") {
    bool imap = n == "ENABLE_IMAP";
    bool on = v.value == "1";
    if (imap) {
      imap_on_ = on;
      imap_explicit_ = true;
    } else {
      pop3_on_ = on;
    }
    if (!on) {
      if (imap && v.value == "0") mapped(label, v.line, what, "no IMAP listeners");
      return;
    }
    bool supported = imap ? f_.imap : f_.pop3;
    if (supported)
      mapped(label, v.line, what, imap ? "[[listener]] imap and imaps" : "[[listener]] pop3 and pop3s");
    else
      notCarried(label, v.line, what, imap ? kImapReason : kPop3Reason);
  } else if (n == "POSTFIX_INET_PROTOCOLS") {
    if (v.value == "all") return;
    if (v.value == "ipv4")
      mapped(label, v.line, what, "listener addresses 0.0.0.0:PORT");
    else
      notCarried(label, v.line, what, "listeners are written for IPv4; change their addresses to \"[::]:PORT\"");
  } else {
    for (const auto& r : kEnvRules) {
      if (r.name != n) continue;
      if (v.value == r.dms_default) return;
      notCarried(label, v.line, what, r.reason);
      return;
    }
    for (const auto& [prefix, reason] : kEnvPrefixes) {
      if (startsWith(n, prefix)) {
        notCarried(label, v.line, what, reason);
        return;
      }
    }
    notCarried(label, v.line, what, "not a docker-mailserver variable known to the importer; check it by hand");
  }
}

void Importer::doTls() {
  const std::string& label = in_.env_label;
  auto get = [&](const char* name) -> const EnvVar* {
    env_done_.insert(name);
    auto it = env_.find(name);
    return it == env_.end() || it->second.value.empty() ? nullptr : &it->second;
  };
  const EnvVar* type = get("SSL_TYPE");
  const EnvVar* cert = get("SSL_CERT_PATH");
  const EnvVar* key = get("SSL_KEY_PATH");
  const EnvVar* alt_cert = get("SSL_ALT_CERT_PATH");
  const EnvVar* alt_key = get("SSL_ALT_KEY_PATH");
  const EnvVar* domain = get("SSL_DOMAIN");
  auto unused = [&](const EnvVar* v, std::string_view why) {
    if (v) notCarried(label, v->line, envShown(*v), why);
  };
  // Copies a certificate or key named by a container path into tls/; returns the TOML path.
  auto take = [&](const EnvVar& v, const std::string& out_name) -> std::string {
    if (auto rel = inFolder(v.value)) {
      use(*rel);
      plan_.files.push_back({"tls/" + out_name, *file(*rel), 0600});
      return "tls/" + out_name;
    }
    warning(label, v.line,
            fmt::format("{} is a path inside the container and is not in the config folder: it is written as it is and "
                        "must exist on this host ('postern config check' says if it does not)",
                        shown(v.value)));
    return v.value;
  };
  if (!type) {
    unused(cert, "SSL_TYPE is not set, so DMS did not use it");
    unused(key, "SSL_TYPE is not set, so DMS did not use it");
    unused(alt_cert, "SSL_TYPE is not set, so DMS did not use it");
    unused(alt_key, "SSL_TYPE is not set, so DMS did not use it");
    unused(domain, "SSL_TYPE is not set, so DMS did not use it");
    return;
  }
  const std::string what = envShown(*type);
  tls_src_ = at(label, type->line);
  if (type->value == "manual") {
    if (!cert || !key) {
      notCarried(label, type->line, what, "SSL_TYPE=manual needs SSL_CERT_PATH and SSL_KEY_PATH");
      unused(cert, "SSL_KEY_PATH is missing");
      unused(key, "SSL_CERT_PATH is missing");
      tls_src_.clear();
      return;
    }
    cert_ = take(*cert, "cert.pem");
    key_ = take(*key, "key.pem");
    mapped(label, type->line, what, "[tls]");
    mapped(label, cert->line, envShown(*cert), fmt::format("[tls] cert = {}", tomlString(cert_)));
    mapped(label, key->line, envShown(*key), fmt::format("[tls] key = {}", tomlString(key_)));
    if (alt_cert && alt_key) {
      alt_cert_ = take(*alt_cert, "alt-cert.pem");
      alt_key_ = take(*alt_key, "alt-key.pem");
      mapped(label, alt_cert->line, envShown(*alt_cert),
             fmt::format("[[tls.certificate]] cert = {}", tomlString(alt_cert_)));
      mapped(label, alt_key->line, envShown(*alt_key),
             fmt::format("[[tls.certificate]] key = {}", tomlString(alt_key_)));
    } else {
      unused(alt_cert, "SSL_ALT_KEY_PATH is missing");
      unused(alt_key, "SSL_ALT_CERT_PATH is missing");
    }
    unused(domain, "only used by SSL_TYPE=letsencrypt");
  } else if (type->value == "letsencrypt") {
    std::string name = domain ? domain->value : hostname_;
    if (name.empty()) {
      notCarried(label, type->line, what, "the certificate folder cannot be found without a hostname or SSL_DOMAIN");
      tls_src_.clear();
    } else {
      cert_ = fmt::format("/etc/letsencrypt/live/{}/fullchain.pem", name);
      key_ = fmt::format("/etc/letsencrypt/live/{}/privkey.pem", name);
      mapped(label, type->line, what, fmt::format("[tls] cert = {}, key = {}", tomlString(cert_), tomlString(key_)));
      warning(label, type->line,
              "certbot's files are expected on this host under /etc/letsencrypt/live/; renewals are picked up "
              "(docs/tls.md); if Traefik's acme.json is what was mounted at /etc/letsencrypt/acme.json, replace "
              "cert/key by [[tls.traefik]] file = \"/etc/letsencrypt/acme.json\", which Postern reads as it is");
      if (domain) mapped(label, domain->line, envShown(*domain), "the /etc/letsencrypt/live/ folder name");
    }
    unused(cert, "only used by SSL_TYPE=manual");
    unused(key, "only used by SSL_TYPE=manual");
    unused(alt_cert, "only used by SSL_TYPE=manual");
    unused(alt_key, "only used by SSL_TYPE=manual");
  } else if (type->value == "self-signed") {
    // DMS expects ssl/<hostname>-cert.pem and ssl/<hostname>-key.pem (and a demoCA).
    std::string found_cert, found_key;
    for (const auto& [path, text] : in_.files) {
      if (startsWith(path, "ssl/") && endsWith(path, "-cert.pem") && path.find('/', 4) == std::string::npos) {
        std::string k = path.substr(0, path.size() - 9) + "-key.pem";
        if (file(k)) {
          found_cert = path;
          found_key = k;
          break;
        }
      }
    }
    if (found_cert.empty()) {
      notCarried(label, type->line, what, "no ssl/<hostname>-cert.pem with its -key.pem in the config folder");
      tls_src_.clear();
    } else {
      use(found_cert);
      use(found_key);
      plan_.files.push_back({"tls/cert.pem", *file(found_cert), 0600});
      plan_.files.push_back({"tls/key.pem", *file(found_key), 0600});
      cert_ = "tls/cert.pem";
      key_ = "tls/key.pem";
      mapped(label, type->line, what,
             fmt::format("[tls] cert = \"tls/cert.pem\", key = \"tls/key.pem\" (copied from {} and {})", found_cert,
                         found_key));
      warning(label, type->line, "a self-signed certificate: clients will not trust it; prefer a real one");
    }
    for (auto* v : {cert, key, alt_cert, alt_key, domain}) unused(v, "not used by SSL_TYPE=self-signed");
  } else {
    std::string why = type->value == "snakeoil" ? "the container's snakeoil test certificate cannot be carried over; "
                                                  "configure [tls] with a real certificate"
                                                : "not a SSL_TYPE Postern can read (manual, letsencrypt, self-signed); "
                                                  "configure [tls] by hand";
    notCarried(label, type->line, what, why);
    tls_src_.clear();
    for (auto* v : {cert, key, alt_cert, alt_key, domain}) unused(v, "SSL_TYPE was not carried over");
  }
}

void Importer::doRelayEnv() {
  const std::string& label = in_.env_label;
  auto get = [&](const char* name) -> const EnvVar* {
    env_done_.insert(name);
    auto it = env_.find(name);
    return it == env_.end() || it->second.value.empty() ? nullptr : &it->second;
  };
  const EnvVar* def = get("DEFAULT_RELAY_HOST");
  const EnvVar* host = get("RELAY_HOST");
  const EnvVar* port = get("RELAY_PORT");
  const EnvVar* user = get("RELAY_USER");
  const EnvVar* pass = get("RELAY_PASSWORD");
  const std::string main_cf = "postfix-main.cf";
  const std::optional<MainSetting>& relayhost = main_relayhost_;
  auto relayhostShown = [&] { return fmt::format("relayhost = {}", shown(relayhost->value)); };
  if (!f_.routes) {
    for (auto* v : {def, host, port, user, pass})
      if (v && !(v == port && v->value == "25")) notCarried(label, v->line, envShown(*v), kRouteReason);
    if (relayhost) notCarried(main_cf, relayhost->line, relayhostShown(), kRouteReason);
    return;
  }
  if (host) {
    unsigned p = 25;
    if (port) {
      auto n = parseDecimal(port->value, 65535);
      if (!n || *n == 0) {
        notCarried(label, port->line, envShown(*port), "not a port number; 25 is used");
      } else {
        p = static_cast<unsigned>(*n);
      }
    }
    RoutePlan r;
    r.relay = fmt::format("{}:{}", host->value, p);
    r.tls = p == 465 ? "implicit" : "starttls";
    r.source = at(label, host->line);
    if (user && pass) {
      r.auth_file = "relay-auth";
      plan_.files.push_back({"relay-auth", fmt::format("{}:{}\n", user->value, pass->value), 0600});
      mapped(label, user->line, envShown(*user), "[[route]] auth_file = \"relay-auth\" (mode 0600)");
      mapped(label, pass->line, envShown(*pass), "[[route]] auth_file = \"relay-auth\" (mode 0600)");
    } else {
      if (user) notCarried(label, user->line, envShown(*user), "RELAY_PASSWORD is missing");
      if (pass) notCarried(label, pass->line, envShown(*pass), "RELAY_USER is missing");
    }
    mapped(label, host->line, envShown(*host),
           fmt::format("[[route]] relay = {} tls = {}", tomlString(r.relay), tomlString(r.tls)));
    if (port && r.relay.ends_with(":" + port->value))
      mapped(label, port->line, envShown(*port), "[[route]] relay port");
    routes_.push_back(std::move(r));
    if (def) notCarried(label, def->line, envShown(*def), "RELAY_HOST takes precedence for every sender domain");
    if (relayhost)
      notCarried(main_cf, relayhost->line, relayhostShown(), "RELAY_HOST takes precedence for every sender domain");
    return;
  }
  for (auto* v : {port, user, pass})
    if (v && !(v == port && v->value == "25")) notCarried(label, v->line, envShown(*v), "RELAY_HOST is not set");
  // The default relay: postfix-main.cf's relayhost overrides DEFAULT_RELAY_HOST, as in DMS.
  if (def && relayhost)
    notCarried(label, def->line, envShown(*def),
               fmt::format("overridden by relayhost at {}", at(main_cf, relayhost->line)));
  const std::string& file = relayhost ? main_cf : label;
  size_t line = relayhost ? relayhost->line : def ? def->line : 0;
  if (!line) return;
  std::string what = relayhost ? relayhostShown() : envShown(*def);
  RelayMap one = parseRelayMap("@x.invalid " + (relayhost ? relayhost->value : def->value) + "\n");
  if (one.routes.empty() || one.routes[0].host.empty()) {
    notCarried(file, line, what, "expected [host]:port");
    return;
  }
  RoutePlan r;
  r.relay = fmt::format("{}:{}", one.routes[0].host, one.routes[0].port);
  r.tls = one.routes[0].port == 465 ? "implicit" : "starttls";
  r.source = at(file, line);
  mapped(file, line, what, fmt::format("[[route]] relay = {} tls = {}", tomlString(r.relay), tomlString(r.tls)));
  routes_.push_back(std::move(r));
}

}  // namespace postern::import::detail
