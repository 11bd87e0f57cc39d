// `postern import docker-mailserver`: the plan from a DMS config folder (dms_import.h).
// What maps to what is documented in docs/migration-docker-mailserver.md; each reason for
// leaving a setting behind is written here once, next to the setting it concerns.
#include "import/dms_import.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "config/config.h"
#include "directory/accounts.h"
#include "directory/aliases.h"
#include "import/dms_files.h"
#include "util/ip.h"
#include "util/strings.h"

namespace postern::import {

namespace {

// DMS mounts the config folder here; paths in mailserver.env and KeyTable point inside it.
constexpr std::string_view kContainerConfigDir = "/tmp/docker-mailserver/";
// DMS copies the config folder's opendkim/ here; KeyTable paths point inside it.
constexpr std::string_view kContainerOpenDkimDir = "/etc/opendkim/";
// Longest value quoted back in the report.
constexpr size_t kMaxShownValue = 80;
// DMS's default for POSTFIX_MESSAGE_SIZE_LIMIT, in bytes.
constexpr uint64_t kDmsDefaultMessageSize = 10240000;

constexpr std::string_view kRouteReason = "outbound relay routes are not implemented yet (issue 12)";
constexpr std::string_view kDkimReason = "DKIM signing is not implemented yet";
constexpr std::string_view kQuotaReason = "mailbox quotas are not implemented yet";
constexpr std::string_view kImapReason =
    "Postern has no IMAP yet: keep Dovecot serving the same Maildirs (docs/migration-docker-mailserver.md)";
constexpr std::string_view kPop3Reason =
    "Postern has no POP3 yet: keep Dovecot serving the same Maildirs (docs/migration-docker-mailserver.md)";
constexpr std::string_view kFilterReason =
    "Postern has no built-in spam, virus or greylisting filter (a milter hook is planned)";
constexpr std::string_view kLogReason =
    "Postern logs one line per event to stderr; reports and rotation belong to the log collector";
constexpr std::string_view kAccountSourceReason =
    "accounts come only from the accounts file (postfix-accounts.cf); LDAP, OAuth2 and saslauthd are not supported";
constexpr std::string_view kFetchReason = "fetching mail from other servers is not implemented";
constexpr std::string_view kSrsReason = "SRS (sender rewriting for forwarded mail) is not implemented";

std::string tomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxShownValue)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > kMaxShownValue) out += "...";
  return out;
}

bool isSecretName(std::string_view name) {
  std::string n = toLower(name);
  return n.find("password") != std::string::npos || n.find("secret") != std::string::npos ||
         n.find("passwd") != std::string::npos;
}

std::string baseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool startsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool endsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Where a report entry sorts: the input files in a fixed order, then by line.
int fileRank(std::string_view file) {
  static const char* kOrder[] = {"",
                                 "mailserver.env",
                                 "postfix-main.cf",
                                 "postfix-master.cf",
                                 "postfix-accounts.cf",
                                 "postfix-virtual.cf",
                                 "postfix-aliases.cf",
                                 "postfix-regexp.cf",
                                 "dovecot.cf",
                                 "dovecot-quotas.cf",
                                 "postfix-relaymap.cf",
                                 "postfix-sasl-password.cf",
                                 "opendkim/",
                                 "rspamd/",
                                 "ssl/"};
  if (endsWith(file, "mailserver.env")) return 1;
  for (int i = static_cast<int>(std::size(kOrder)) - 1; i > 1; --i)
    if (file == kOrder[i] || (endsWith(kOrder[i], "/") && startsWith(file, kOrder[i]))) return i;
  return file.empty() ? 0 : static_cast<int>(std::size(kOrder));
}

struct Entry {
  int rank;
  std::string file;
  size_t line;
  size_t seq;
  std::string text;
};

struct ListenerPlan {
  ListenerPlan(std::string s, unsigned p) : service(std::move(s)), port(p) {}
  std::string service;
  unsigned port;
  std::string proxy = "off";
  std::string proxy_source;        // file:line that set proxy
  bool proxy_from_master = false;  // a master.cf override beats main.cf
};

struct RoutePlan {
  std::string sender_domain;  // empty: the default route
  std::string relay;          // host:port
  std::string tls;
  std::string auth_file;  // relative output path, empty without credentials
  std::string source;
};

class Importer {
 public:
  Importer(const ImportInput& in, const Features& f) : in_(in), f_(f) {}
  Plan run();

 private:
  // Report helpers. `file` is the input file's label, `line` 0 for the file as a whole.
  void add(const std::string& file, size_t line, std::string text) {
    entries_.push_back({fileRank(file), file, line, entries_.size(), std::move(text)});
  }
  static std::string at(const std::string& file, size_t line) { return line ? fmt::format("{}:{}", file, line) : file; }
  void mapped(const std::string& file, size_t line, std::string_view what, std::string_view toml) {
    ++plan_.mapped;
    add(file, line, fmt::format("mapped  {}  {} -> {}", at(file, line), what, toml));
  }
  void notCarried(const std::string& file, size_t line, std::string_view what, std::string_view why) {
    ++plan_.not_carried;
    add(file, line, fmt::format("not carried over  {}  {}: {}", at(file, line), what, why));
  }
  void warning(const std::string& file, size_t line, std::string_view msg) {
    ++plan_.warnings;
    add(file, line,
        file.empty() ? fmt::format("warning  {}", msg) : fmt::format("warning  {}  {}", at(file, line), msg));
  }
  void note(const std::string& file, std::string_view msg) {
    add(file, 0, file.empty() ? fmt::format("note  {}", msg) : fmt::format("note  {}  {}", file, msg));
  }
  const std::string* file(const std::string& name) const {
    auto it = in_.files.find(name);
    return it == in_.files.end() ? nullptr : &it->second;
  }
  void use(const std::string& name) { used_.insert(name); }
  // A path written for the container: the file in the input folder it stands for, if any.
  std::optional<std::string> inFolder(std::string_view container_path) const {
    std::string rel;
    if (startsWith(container_path, kContainerConfigDir))
      rel = std::string(container_path.substr(kContainerConfigDir.size()));
    else if (startsWith(container_path, kContainerOpenDkimDir))
      rel = "opendkim/" + std::string(container_path.substr(kContainerOpenDkimDir.size()));
    else
      return std::nullopt;
    if (!file(rel)) return std::nullopt;
    return rel;
  }

  void doEnv();
  void doEnvVar(const EnvVar& v);
  void doTls();
  void doRelayEnv();
  void doMainCf();
  void doMasterCf();
  void doDovecotCf();
  void doAccounts();
  void doVirtual();
  void doLocalAliases();
  void doRegexp();
  void doQuotas();
  void doRelayMap();
  void doDkim();
  void doOtherFiles();
  void setProxy(const std::string& service, const std::string& mode, const std::string& src, bool from_master);
  std::string renderToml();
  void trustedNetworks();

  const ImportInput& in_;
  const Features f_;
  Plan plan_;
  std::vector<Entry> entries_;
  std::set<std::string> used_;  // input files consumed (the rest are reported as such)

  std::map<std::string, EnvVar> env_;  // last assignment of each variable
  std::set<std::string> env_done_;     // variables reported by a group handler

  std::string hostname_, hostname_src_;
  std::string log_level_, log_src_;
  std::optional<uint64_t> max_size_;
  std::string max_size_src_;
  std::optional<unsigned> max_recipients_;
  std::string cert_, key_, alt_cert_, alt_key_, tls_src_;
  std::optional<uint64_t> header_timeout_ms_;
  std::string header_timeout_src_;
  std::vector<std::string> trusted_;
  std::string trusted_src_;
  bool trusted_default_ = false;
  std::vector<std::string> dovecot_trusted_;  // dovecot.cf haproxy_trusted_networks
  size_t dovecot_trusted_line_ = 0;
  std::string dovecot_trusted_what_;
  std::vector<std::string> mynetworks_;
  std::string mynetworks_src_;
  size_t mynetworks_line_ = 0;
  std::vector<ListenerPlan> listeners_;
  bool imap_on_ = true;  // DMS serves IMAP unless told otherwise
  bool pop3_on_ = false;
  bool imap_explicit_ = false;
  std::vector<RoutePlan> routes_;
  std::optional<MainSetting> main_relayhost_;  // postfix-main.cf relayhost, decided with the env
  std::map<std::string, SaslPassword> sasl_;   // key ("@domain" or "[host]:port") -> credentials
  std::set<std::string> sasl_used_;
  bool have_accounts_ = false, have_virtual_ = false, have_quotas_ = false, have_dkim_ = false;
  std::string virtual_text_;  // the aliases file written (virtual.cf)
  std::set<std::string> alias_sources_;
  std::string extra_aliases_;  // lines converted from postfix-aliases.cf and postfix-regexp.cf
};

void Importer::setProxy(const std::string& service, const std::string& mode, const std::string& src, bool from_master) {
  for (auto& l : listeners_) {
    if (l.service != service) continue;
    if (l.proxy_from_master && !from_master) return;  // master.cf -o beats main.cf
    l.proxy = mode;
    l.proxy_source = src;
    l.proxy_from_master = from_master;
  }
}

// ---- mailserver.env ----------------------------------------------------------------

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
    {"ENABLE_OPENDMARC", "1", "inbound DMARC checking is not configurable in Postern"},
    {"ENABLE_POLICYD_SPF", "1", "inbound SPF checking is not configurable in Postern"},
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
    {"MOVE_SPAM_TO_JUNK", "1", kFilterReason},
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
    {"ENABLE_MTA_STS", "0", "MTA-STS for outbound delivery is not implemented"},
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
              "(docs/tls.md); with Traefik's acme.json export the certificate first");
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

// ---- postfix-main.cf and postfix-master.cf ----------------------------------------------

std::string mainReason(std::string_view name) {
  if (name == "smtpd_banner") return "Postern has no custom banner (it greets with its hostname)";
  if (startsWith(name, "smtp_sasl") || startsWith(name, "smtp_tls") || name == "sender_dependent_relayhost_maps")
    return "outbound SMTP client settings: " + std::string(kRouteReason);
  if (startsWith(name, "smtpd_tls") || startsWith(name, "tls_"))
    return "TLS versions and ciphers are [tls] min_version, ciphers and ciphersuites; Postfix syntax is not translated";
  if (endsWith(name, "_restrictions") || name == "mynetworks_style" || name == "relay_domains")
    return "Postern's relay and sender rules are fixed (local recipients, or AUTH for anything else)";
  if (startsWith(name, "postscreen_")) return "postscreen has no equivalent; see [smtp] greeting_delay and [protect]";
  if (startsWith(name, "virtual_") || name == "mydestination" || name == "alias_maps")
    return "domains and aliases come from the accounts and aliases files";
  if (name == "inet_protocols") return "listeners are written for IPv4; add \"[::]:PORT\" listeners for IPv6";
  if (startsWith(name, "milter") || startsWith(name, "smtpd_milters") || name == "non_smtpd_milters")
    return std::string(kFilterReason);
  return "no Postern equivalent for this Postfix parameter";
}

void Importer::doMainCf() {
  const std::string name = "postfix-main.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  MainCf cf = parseMainCf(*text);
  for (const auto& b : cf.bad) notCarried(name, b.line, shown(b.text), b.reason);
  for (const auto& s : cf.settings) {
    std::string what = fmt::format("{} = {}", s.name, isSecretName(s.name) ? "(not shown)" : shown(s.value));
    std::string src = at(name, s.line);
    if (s.name == "postscreen_upstream_proxy_protocol" || s.name == "smtpd_upstream_proxy_protocol") {
      if (s.value != "haproxy" && !s.value.empty()) {
        notCarried(name, s.line, what, "Postfix knows only 'haproxy' here");
        continue;
      }
      std::string mode = s.value.empty() ? "off" : "required";
      if (s.name == "postscreen_upstream_proxy_protocol") {
        // postscreen only runs on port 25 in DMS.
        setProxy("smtp", mode, src, false);
        mapped(name, s.line, what, fmt::format("[[listener]] service=\"smtp\" proxy_protocol=\"{}\"", mode));
      } else {
        for (const auto& l : std::vector<std::string>{"smtp", "submission", "submissions"})
          setProxy(l, mode, src, false);
        mapped(name, s.line, what,
               fmt::format("[[listener]] smtp, submission, submissions proxy_protocol=\"{}\"", mode));
      }
    } else if (s.name == "postscreen_upstream_proxy_timeout" || s.name == "smtpd_upstream_proxy_timeout") {
      auto ms = parseDurationMs(s.value);
      if (!ms || *ms == 0) {
        notCarried(name, s.line, what, "not a duration");
        continue;
      }
      header_timeout_ms_ = *ms;
      header_timeout_src_ = src;
      mapped(name, s.line, what, fmt::format("[proxy_protocol] header_timeout = \"{}\"", formatDurationMs(*ms)));
    } else if (s.name == "message_size_limit") {
      auto size = parseDecimal(s.value, UINT64_MAX >> 1);
      if (!size || *size == 0 || *size > config::kMaxMessageSizeLimit) {
        notCarried(name, s.line, what,
                   fmt::format("not a size from 1 to {} bytes (Postern's maximum)", config::kMaxMessageSizeLimit));
        continue;
      }
      max_size_ = *size;
      max_size_src_ = src;
      mapped(name, s.line, what, fmt::format("[smtp] max_message_size = {}", *size));
    } else if (s.name == "smtpd_recipient_limit") {
      auto n = parseDecimal(s.value, 100000);
      if (!n || *n == 0) {
        notCarried(name, s.line, what, "not a number from 1 to 100000");
        continue;
      }
      max_recipients_ = static_cast<unsigned>(*n);
      mapped(name, s.line, what, fmt::format("[smtp] max_recipients = {}", *n));
    } else if (s.name == "relayhost") {
      main_relayhost_ = s;  // decided with RELAY_HOST and DEFAULT_RELAY_HOST (doRelayEnv)
    } else if (s.name == "myhostname") {
      if (s.value.find('$') != std::string::npos) {
        notCarried(name, s.line, what, "refers to other parameters; set hostname by hand");
        continue;
      }
      hostname_ = s.value;
      hostname_src_ = src;
      mapped(name, s.line, what, fmt::format("hostname = {}", tomlString(s.value)));
    } else if (s.name == "recipient_delimiter") {
      if (s.value == "+")
        mapped(name, s.line, what, "(built in: user+tag@domain is delivered to user@domain)");
      else
        notCarried(name, s.line, what, "Postern's sub-address delimiter is always '+'");
    } else if (s.name == "mynetworks") {
      // Only useful as the list of proxies (decided once every file is read).
      mynetworks_.clear();
      for (auto w : split(s.value, ' ')) {
        for (auto piece : split(w, ',')) {
          std::string net(trim(piece));
          if (net.empty()) continue;
          if (net.front() == '[') {  // Postfix writes IPv6 as [::1]/128
            size_t close = net.find(']');
            if (close != std::string::npos) net = net.substr(1, close - 1) + net.substr(close + 1);
          }
          mynetworks_.push_back(net);
        }
      }
      mynetworks_src_ = src;
      mynetworks_line_ = s.line;
    } else {
      notCarried(name, s.line, what, mainReason(s.name));
    }
  }
}

void Importer::doMasterCf() {
  const std::string name = "postfix-master.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  MasterCf cf = parseMasterOverrides(*text);
  for (const auto& b : cf.bad) notCarried(name, b.line, shown(b.text), b.reason);
  for (const auto& o : cf.overrides) {
    std::string what =
        fmt::format("{}/{}/{}={}", o.service, o.type, o.param, isSecretName(o.param) ? "(not shown)" : shown(o.value));
    std::string service = o.service;
    bool old_name = service == "smtps" || service == "ssmtp";
    if (old_name) service = "submissions";
    bool known = service == "smtp" || service == "submission" || service == "submissions";
    if ((o.service == "smtp" || o.service == "relay") && o.type == "unix") {
      notCarried(name, o.line, what, "outbound SMTP client settings: " + std::string(kRouteReason));
      continue;
    }
    if (!known || o.type != "inet") {
      notCarried(name, o.line, what,
                 fmt::format("Postern has no listener for the Postfix service '{}/{}'", o.service, o.type));
      continue;
    }
    if (o.param == "smtpd_upstream_proxy_protocol" || o.param == "postscreen_upstream_proxy_protocol") {
      if (o.value != "haproxy" && !o.value.empty()) {
        notCarried(name, o.line, what, "Postfix knows only 'haproxy' here");
        continue;
      }
      std::string mode = o.value.empty() ? "off" : "required";
      setProxy(service, mode, at(name, o.line), true);
      mapped(name, o.line, what, fmt::format("[[listener]] service=\"{}\" proxy_protocol=\"{}\"", service, mode));
      if (old_name)
        warning(name, o.line,
                fmt::format("'{}' is the old name of 'submissions' (port 465, implicit TLS): current docker-mailserver "
                            "no longer has a service of that name, so this line silently stopped applying there; it "
                            "is imported as the submissions listener",
                            o.service));
    } else if (o.param == "smtpd_upstream_proxy_timeout" || o.param == "postscreen_upstream_proxy_timeout") {
      auto ms = parseDurationMs(o.value);
      if (!ms || *ms == 0) {
        notCarried(name, o.line, what, "not a duration");
        continue;
      }
      header_timeout_ms_ = *ms;
      header_timeout_src_ = at(name, o.line);
      mapped(name, o.line, what,
             fmt::format("[proxy_protocol] header_timeout = \"{}\" (one timeout for every listener)",
                         formatDurationMs(*ms)));
    } else {
      notCarried(name, o.line, what,
                 fmt::format("Postern has no per-listener setting for the Postfix parameter '{}'", o.param));
    }
  }
}

// ---- dovecot.cf -------------------------------------------------------------------------

void Importer::doDovecotCf() {
  const std::string name = "dovecot.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  DovecotCf cf = parseDovecotCf(*text);
  for (const auto& b : cf.bad) notCarried(name, b.line, shown(b.text), b.reason);
  for (const auto& s : cf.settings) {
    std::string what = s.opens_section
                           ? fmt::format("{} {{", s.name)
                           : fmt::format("{}{}{}{}", s.section, s.section.empty() ? "" : "/", s.name,
                                         s.value.empty() && s.name.front() == '!'
                                             ? ""
                                             : " = " + (isSecretName(s.name) ? "(not shown)" : shown(s.value)));
    if (!s.opens_section && s.section.empty() && s.name == "haproxy_trusted_networks") {
      std::vector<std::string> nets;
      bool ok = true;
      for (auto w : split(s.value, ' ')) {
        std::string net(trim(w));
        if (net.empty()) continue;
        if (!Cidr::parse(net)) ok = false;  // a network, or a bare address as Dovecot allows
        nets.push_back(net);
      }
      if (!ok || nets.empty()) {
        notCarried(name, s.line, what, "not a list of networks");
        continue;
      }
      dovecot_trusted_ = nets;  // decided with the listeners (trustedNetworks)
      dovecot_trusted_line_ = s.line;
      dovecot_trusted_what_ = what;
      continue;
    }
    notCarried(name, s.line, what,
               s.opens_section ? "a Dovecot section; Postern has no IMAP/POP3 yet (its settings are listed below)"
                               : "a Dovecot setting; Postern has no IMAP/POP3 yet");
  }
}

// ---- accounts and aliases ---------------------------------------------------------------

// Runs `parse` over `text`; each line it refuses is commented out (with its continuation
// lines) and reported, until the text parses. Returns the text that parses, or nothing
// when the parser's message names no line of the text.
template <class Parse>
std::optional<std::string> keepParsable(std::string text, const std::string& label, Parse parse,
                                        const std::function<void(size_t, std::string_view, std::string_view)>& refuse) {
  std::vector<std::string> lines;
  for (auto l : split(text, '\n')) lines.emplace_back(l);
  for (size_t guard = 0; guard <= lines.size(); ++guard) {
    std::string joined;
    for (size_t i = 0; i < lines.size(); ++i) joined += lines[i] + (i + 1 < lines.size() ? "\n" : "");
    auto r = parse(joined, label);
    if (r) return joined;
    // "LABEL:LINE: error: message"
    const std::string& msg = r.status().message();
    size_t p = label.size() + 1;
    size_t colon = msg.find(':', p);
    auto line = colon == std::string::npos ? std::nullopt
                                           : parseDecimal(std::string_view(msg).substr(p, colon - p), lines.size());
    if (!line || *line == 0 || msg.substr(0, label.size()) != label) return std::nullopt;
    size_t idx = *line - 1;
    if (lines[idx].rfind("# not carried over by postern import: ", 0) == 0) return std::nullopt;
    std::string original = lines[idx];
    std::string why = msg.substr(msg.find("error: ") == std::string::npos ? colon + 1 : msg.find("error: ") + 7);
    refuse(*line, original, why);
    lines[idx] = "# not carried over by postern import: " + original;
    for (size_t j = idx + 1; j < lines.size() && !lines[j].empty() && (lines[j][0] == ' ' || lines[j][0] == '\t'); ++j)
      lines[j] = "# " + lines[j];
  }
  return std::nullopt;
}

void Importer::doAccounts() {
  const std::string name = "postfix-accounts.cf";
  const std::string* text = file(name);
  if (!text) {
    warning("", 0, "no postfix-accounts.cf: an empty accounts.cf is written (add accounts with 'postern account add')");
    plan_.files.push_back({"accounts.cf", "", 0600});
    return;
  }
  use(name);
  std::optional<std::string> kept =
      keepParsable(*text, name, directory::parseAccounts, [&](size_t line, std::string_view l, std::string_view why) {
        // Show the address only: the rest is a password hash.
        std::string_view addr = l.substr(0, l.find('|'));
        notCarried(name, line, shown(trim(addr)), fmt::format("{} (the line is commented out in accounts.cf)", why));
      });
  if (!kept) {
    notCarried(name, 0, "the whole file", "it cannot be read line by line; an empty accounts.cf is written");
    plan_.files.push_back({"accounts.cf", "", 0600});
    return;
  }
  auto parsed = directory::parseAccounts(*kept, name);
  if (parsed) {
    for (const auto& a : parsed->accounts)
      mapped(name, a.line, a.address,
             fmt::format("accounts.cf ({{{}}} hash kept, old password works)", directory::schemeName(a.scheme)));
    for (const auto& n : parsed->notes) warning(name, n.line, n.message);
  }
  plan_.files.push_back({"accounts.cf", *kept, 0600});
  have_accounts_ = true;
}

void Importer::doVirtual() {
  const std::string name = "postfix-virtual.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  std::optional<std::string> kept =
      keepParsable(*text, name, directory::parseAliases, [&](size_t line, std::string_view l, std::string_view why) {
        notCarried(name, line, shown(trim(l)), fmt::format("{} (the line is commented out in virtual.cf)", why));
      });
  have_virtual_ = true;
  if (!kept) {
    notCarried(name, 0, "the whole file", "it cannot be read line by line; virtual.cf starts empty");
    return;
  }
  virtual_text_ = *kept;
  auto parsed = directory::parseAliases(virtual_text_, name);
  if (parsed) {
    for (const auto& a : parsed->aliases) {
      alias_sources_.insert(a.source);
      mapped(name, a.line, a.source, "virtual.cf");
    }
    for (const auto& n : parsed->notes) warning(name, n.line, n.message);
  }
}

void Importer::doLocalAliases() {
  const std::string name = "postfix-aliases.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  LocalAliases la = parseLocalAliases(*text);
  for (const auto& b : la.bad) notCarried(name, b.line, shown(b.text), b.reason);
  for (const auto& a : la.aliases) {
    std::string what = fmt::format("{}: {}", a.name, shown(fmt::format("{}", fmt::join(a.targets, ", "))));
    if (hostname_.empty()) {
      notCarried(name, a.line, what, "local aliases apply to the hostname, which is not known");
      continue;
    }
    std::string bad;
    for (const auto& t : a.targets) {
      if (t.front() == '|' || t.front() == '/' || startsWith(t, ":include:"))
        bad = "commands, files and :include: targets are not supported";
      else if (!directory::checkAddress(t))
        bad = fmt::format("target '{}' is not a full address (local users do not exist in Postern)", shown(t));
      if (!bad.empty()) break;
    }
    std::string source = fmt::format("{}@{}", a.name, toLower(hostname_));
    if (bad.empty() && !directory::checkAliasSource(source)) bad = "the name is not a valid local part";
    if (bad.empty() && alias_sources_.count(source))
      bad = fmt::format("{} is already an alias in postfix-virtual.cf", source);
    if (!bad.empty()) {
      notCarried(name, a.line, what, bad);
      continue;
    }
    alias_sources_.insert(source);
    extra_aliases_ += fmt::format("{} {}\n", source, fmt::join(a.targets, ","));
    mapped(name, a.line, what, fmt::format("virtual.cf: {} (local aliases apply to the hostname)", source));
  }
}

void Importer::doRegexp() {
  const std::string name = "postfix-regexp.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  RegexpAliases ra = parseRegexpAliases(*text);
  for (const auto& b : ra.bad) notCarried(name, b.line, shown(b.text), b.reason);
  for (const auto& r : ra.rules) {
    std::string what = fmt::format("/{}/{} {}", shown(r.pattern), r.flags, shown(r.result));
    std::string addr = literalAddressOf(r);
    if (addr.empty()) {
      notCarried(name, r.line, what,
                 "Postern has no regular-expression aliases; only ^exact@address$ patterns are converted");
      continue;
    }
    std::vector<std::string> targets;
    std::string bad;
    for (auto t : directory::splitTargets(r.result)) {
      if (t.find('$') != std::string_view::npos || !directory::checkAddress(t)) {
        bad = fmt::format("target '{}' is not a full address", shown(t));
        break;
      }
      targets.emplace_back(t);
    }
    if (bad.empty() && targets.empty()) bad = "no target";
    if (bad.empty() && alias_sources_.count(addr)) bad = fmt::format("{} is already an alias", addr);
    if (!bad.empty()) {
      notCarried(name, r.line, what, bad);
      continue;
    }
    alias_sources_.insert(addr);
    extra_aliases_ += fmt::format("{} {}\n", addr, fmt::join(targets, ","));
    mapped(name, r.line, what, fmt::format("virtual.cf: {} (the pattern matches exactly one address)", addr));
  }
}

void Importer::doQuotas() {
  const std::string name = "dovecot-quotas.cf";
  const std::string* text = file(name);
  if (!text) return;
  use(name);
  Quotas q = parseQuotas(*text);
  for (const auto& b : q.bad) notCarried(name, b.line, shown(b.text), b.reason);
  std::string out;
  for (const auto& e : q.quotas) {
    std::string what = fmt::format("{}:{}", e.address, e.size);
    if (!f_.quotas) {
      notCarried(name, e.line, what, kQuotaReason);
      continue;
    }
    out += what + "\n";
    mapped(name, e.line, what, "quotas.cf ([directory] quotas)");
  }
  if (f_.quotas && !q.quotas.empty()) {
    plan_.files.push_back({"quotas.cf", out, 0600});
    have_quotas_ = true;
  }
}

// ---- relay map and credentials ----------------------------------------------------------

void Importer::doRelayMap() {
  const std::string sasl_name = "postfix-sasl-password.cf";
  if (const std::string* text = file(sasl_name)) {
    use(sasl_name);
    SaslPasswords sp = parseSaslPasswords(*text);
    for (const auto& b : sp.bad) notCarried(sasl_name, b.line, shown(b.text) + " (credentials not shown)", b.reason);
    for (const auto& e : sp.entries) sasl_[toLower(e.key)] = e;
  }
  const std::string name = "postfix-relaymap.cf";
  if (const std::string* text = file(name)) {
    use(name);
    RelayMap rm = parseRelayMap(*text);
    for (const auto& b : rm.bad) notCarried(name, b.line, shown(b.text), b.reason);
    for (const auto& r : rm.routes) {
      std::string what = r.host.empty() ? "@" + r.domain
                                        : fmt::format("@{} {}{}{}:{}", r.domain, r.mx_lookup ? "" : "[", r.host,
                                                      r.mx_lookup ? "" : "]", r.port);
      if (!f_.routes) {
        notCarried(name, r.line, what, kRouteReason);
        continue;
      }
      if (r.host.empty()) {
        notCarried(name, r.line, what,
                   "a domain excluded from the relay: give the default [[route]] to the other domains by hand");
        continue;
      }
      RoutePlan p;
      p.sender_domain = r.domain;
      p.relay = fmt::format("{}:{}", r.host, r.port);
      p.tls = r.port == 465 ? "implicit" : "starttls";
      p.source = at(name, r.line);
      std::string key = "@" + r.domain, host_key = fmt::format("[{}]:{}", toLower(r.host), r.port);
      const SaslPassword* cred = sasl_.count(key) ? &sasl_[key] : sasl_.count(host_key) ? &sasl_[host_key] : nullptr;
      if (cred) {
        p.auth_file = "relay-auth-" + r.domain;
        plan_.files.push_back({p.auth_file, fmt::format("{}:{}\n", cred->user, cred->password), 0600});
        sasl_used_.insert(toLower(cred->key));
      }
      if (r.mx_lookup)
        warning(name, r.line,
                fmt::format("{} is written without [brackets]: Postfix looked up its MX records, "
                            "Postern connects to the host itself",
                            r.host));
      mapped(name, r.line, what,
             fmt::format("[[route]] sender_domains = [{}] relay = {} tls = {}{}", tomlString(r.domain),
                         tomlString(p.relay), tomlString(p.tls),
                         p.auth_file.empty() ? "" : fmt::format(" auth_file = {}", tomlString(p.auth_file))));
      routes_.push_back(std::move(p));
    }
  }
  // Credentials for the RELAY_HOST default route come from the env; the rest of the file:
  for (const auto& [key, e] : sasl_) {
    std::string what = fmt::format("{} {}:(not shown)", e.key, shown(e.user));
    if (!f_.routes) {
      notCarried(sasl_name, e.line, what, kRouteReason);
    } else if (sasl_used_.count(key)) {
      mapped(sasl_name, e.line, what, "relay-auth-<domain> (mode 0600) for the route of that domain");
    } else {
      notCarried(sasl_name, e.line, what, "no relay route of postfix-relaymap.cf uses these credentials");
    }
  }
}

// ---- DKIM -------------------------------------------------------------------------------

void Importer::doDkim() {
  // OpenDKIM: keys/<domain>/<selector>.private, the KeyTable names them.
  std::map<std::string, std::pair<std::string, std::string>> key_files;  // input path -> (domain, selector)
  for (const auto& [path, text] : in_.files) {
    if (startsWith(path, "opendkim/keys/")) {
      auto parts = split(path, '/');
      if (parts.size() == 4 && endsWith(parts[3], ".private")) {
        std::string sel(parts[3].substr(0, parts[3].size() - 8));
        key_files[path] = {toLower(parts[2]), sel};
      } else if (parts.size() == 4 && endsWith(parts[3], ".txt")) {
        use(path);
        note(path, "the DNS record of a DKIM key; Postern needs only the private key");
      }
    } else if (startsWith(path, "rspamd/dkim/")) {
      std::string domain, selector;
      if (parseRspamdKeyName(baseName(path), domain, selector)) {
        key_files[path] = {domain, selector};
      } else if (endsWith(path, ".public.txt") || endsWith(path, ".public.dns.txt")) {
        use(path);
        note(path, "the DNS record of a DKIM key; Postern needs only the private key");
      }
    }
  }
  for (const auto& [path, ds] : key_files) {
    use(path);
    std::string out = fmt::format("dkim/{}/{}.key", ds.first, ds.second);
    if (!f_.dkim) {
      notCarried(path, 0, fmt::format("DKIM key for {} selector {}", ds.first, ds.second), kDkimReason);
      continue;
    }
    bool dup = false;
    for (const auto& f : plan_.files) dup = dup || f.path == out;
    if (dup) {
      notCarried(path, 0, fmt::format("DKIM key for {} selector {}", ds.first, ds.second),
                 "another key file gives the same domain and selector");
      continue;
    }
    plan_.files.push_back({out, *file(path), 0600});
    have_dkim_ = true;
    mapped(path, 0, fmt::format("DKIM key for {} selector {}", ds.first, ds.second), "[dkim] keys: " + out);
  }
  for (const char* table : {"opendkim/KeyTable", "opendkim/SigningTable"}) {
    const std::string name = table;
    const std::string* text = file(name);
    if (!text) continue;
    use(name);
    std::vector<std::pair<size_t, std::string>> lines;
    std::vector<BadLine> bad;
    std::vector<std::string> whys;
    if (name == "opendkim/KeyTable") {
      KeyTable kt = parseKeyTable(*text);
      bad = kt.bad;
      for (const auto& k : kt.keys) {
        std::string what = fmt::format("{} {}:{}:{}", k.key_name, k.domain, k.selector, shown(k.path));
        if (!f_.dkim) {
          notCarried(name, k.line, what, kDkimReason);
          continue;
        }
        auto rel = inFolder(k.path);
        if (!rel || !key_files.count(*rel)) {
          notCarried(name, k.line, what, "the key file is not in the config folder's opendkim/keys/");
        } else if (key_files[*rel] != std::make_pair(k.domain, k.selector)) {
          notCarried(name, k.line, what, "the key file's folder and name do not match this domain and selector");
        } else {
          mapped(name, k.line, what, fmt::format("dkim/{}/{}.key", k.domain, k.selector));
        }
      }
    } else {
      SigningTable st = parseSigningTable(*text);
      bad = st.bad;
      for (const auto& e : st.entries) {
        std::string what = fmt::format("{} {}", shown(e.pattern), shown(e.key_name));
        if (!f_.dkim)
          notCarried(name, e.line, what, kDkimReason);
        else if (startsWith(e.pattern, "*@") || e.pattern.find('@') == std::string::npos)
          mapped(name, e.line, what, "(Postern signs mail from a domain with that domain's key)");
        else
          notCarried(name, e.line, what,
                     "per-sender keys are not supported; Postern picks the key by the sender's domain");
      }
    }
    for (const auto& b : bad) notCarried(name, b.line, shown(b.text), b.reason);
  }
}

// ---- everything else in the folder ------------------------------------------------------

void Importer::doOtherFiles() {
  for (const auto& [path, text] : in_.files) {
    if (used_.count(path)) continue;
    std::string why;
    if (startsWith(path, "ssl/")) {
      why = tls_src_.empty() ? "no SSL_TYPE uses it" : "not named by the SSL_* variables";
    } else if (path == "postfix-send-access.cf" || path == "postfix-receive-access.cf") {
      why = "Postern has no per-address access lists";
    } else if (path == "dovecot-masters.cf") {
      why = "master users are not supported";
    } else if (startsWith(path, "rspamd/") || path == "amavis.cf" || startsWith(path, "spamassassin") ||
               path == "whitelist_clients.local" || startsWith(path, "postgrey")) {
      why = std::string(kFilterReason);
    } else if (path == "user-patches.sh") {
      why = "a shell script run inside the DMS container; nothing to run in Postern";
    } else if (path == "fetchmail.cf" || startsWith(path, "getmail")) {
      why = std::string(kFetchReason);
    } else if (endsWith(path, ".sieve") || startsWith(path, "sieve")) {
      why = "Sieve filters are not implemented";
    } else if (startsWith(path, "opendkim/")) {
      why = "an OpenDKIM file the importer does not read";
    } else if (path == "postfix-policyd-spf.conf" || startsWith(path, "opendmarc")) {
      why = "inbound SPF/DMARC checking is not configurable in Postern";
    } else if (baseName(path) == ".gitkeep" || baseName(path) == ".keep" || text.empty()) {
      continue;  // placeholders hold no settings
    } else {
      why = "a file the importer does not know; check it by hand";
    }
    notCarried(path, 0, "the whole file", why);
  }
  for (const auto& [path, reason] : in_.unread) notCarried(path, 0, "the whole file", "not read: " + reason);
}

void Importer::trustedNetworks() {
  // Listeners that need TLS are written commented out when there is no certificate.
  bool any = false;
  for (const auto& l : listeners_)
    any = any ||
          (l.proxy != "off" && (!cert_.empty() || l.service == "smtp" || l.service == "imap" || l.service == "pop3"));
  // The proxies: Dovecot's haproxy_trusted_networks, else mynetworks, else loopback.
  const std::string dovecot = "dovecot.cf", main_cf = "postfix-main.cf";
  std::string mynetworks_what = fmt::format("mynetworks = {}", shown(fmt::format("{}", fmt::join(mynetworks_, " "))));
  if (!dovecot_trusted_.empty()) {
    if (any) {
      trusted_ = dovecot_trusted_;
      trusted_src_ = at(dovecot, dovecot_trusted_line_);
      mapped(dovecot, dovecot_trusted_line_, dovecot_trusted_what_,
             "[proxy_protocol] trusted_networks (the proxies Dovecot trusted)");
    } else {
      notCarried(dovecot, dovecot_trusted_line_, dovecot_trusted_what_,
                 "no SMTP listener uses the PROXY protocol, so there is no proxy to trust");
    }
  }
  if (!mynetworks_src_.empty()) {
    std::vector<std::string> nets;
    for (const auto& n : mynetworks_)
      if (Cidr::parse(n)) nets.push_back(n);
    if (!any) {
      notCarried(main_cf, mynetworks_line_, mynetworks_what,
                 "Postern lets no client relay because of its address (see PERMIT_DOCKER in "
                 "docs/migration-docker-mailserver.md)");
    } else if (!trusted_.empty()) {
      notCarried(
          main_cf, mynetworks_line_, mynetworks_what,
          fmt::format("the proxies come from {}; Postern lets no client relay because of its address", trusted_src_));
    } else if (nets.empty()) {
      notCarried(main_cf, mynetworks_line_, mynetworks_what, "no network in it that Postern can read");
    } else {
      trusted_ = nets;
      trusted_src_ = mynetworks_src_;
      mapped(main_cf, mynetworks_line_, mynetworks_what, "[proxy_protocol] trusted_networks");
      warning(main_cf, mynetworks_line_,
              "mynetworks is used as the list of proxies allowed to send PROXY headers; narrow it to your load "
              "balancers");
    }
  }
  if (!trusted_.empty()) return;
  if (any) {
    trusted_ = {"127.0.0.0/8", "::1/128"};
    trusted_default_ = true;
    warning("", 0,
            "no list of trusted proxies was found (Dovecot's haproxy_trusted_networks or mynetworks): "
            "[proxy_protocol] trusted_networks is loopback only; put your load balancers' addresses there");
  }
}

// ---- the TOML ---------------------------------------------------------------------------

std::string Importer::renderToml() {
  std::string t;
  auto src = [](const std::string& s) { return s.empty() ? std::string() : "   # " + s; };
  t += "# Written by `postern import docker-mailserver`. A comment names the docker-mailserver\n"
       "# setting behind each line; the import report lists everything that was not carried over.\n\n";
  if (hostname_.empty())
    t += "hostname = \"mail.example.invalid\"   # CHANGE: DMS took it from the container's hostname\n";
  else
    t += fmt::format("hostname = {}{}\n", tomlString(hostname_), src(hostname_src_));
  t += "data_dir = \"/var/lib/postern\"   # spool and state (DMS kept its queue in mail-state)\n";
  if (!log_level_.empty()) t += fmt::format("log_level = {}{}\n", tomlString(log_level_), src(log_src_));
  if (f_.server_user)
    t += "\n[server]\n"
         "# The server makes the Maildir folders its own: while Dovecot still serves them (DMS: uid 5000,\n"
         "# DMS_VMAIL_UID), name a user with Dovecot's uid here instead of the one the install created.\n"
         "user = \"postern\"\n"
         "group = \"postern\"\n";
  t += "\n[directory]\n";
  t += "accounts = \"accounts.cf\"   # postfix-accounts.cf\n";
  t += fmt::format("aliases = \"virtual.cf\"{}\n",
                   have_virtual_ || !extra_aliases_.empty() ? "   # postfix-virtual.cf" : "");
  if (have_quotas_) t += "quotas = \"quotas.cf\"   # dovecot-quotas.cf\n";
  t += "\n[mailbox]\nroot = \"/var/mail\"   # DMS's mail folder (the mail-data volume): <root>/<domain>/<user>/\n";
  if (!cert_.empty()) {
    t += fmt::format("\n[tls]{}\ncert = {}\nkey = {}\n", src(tls_src_), tomlString(cert_), tomlString(key_));
    if (!alt_cert_.empty())
      t += fmt::format("\n[[tls.certificate]]   # SSL_ALT_CERT_PATH, SSL_ALT_KEY_PATH\ncert = {}\nkey = {}\n",
                       tomlString(alt_cert_), tomlString(alt_key_));
  } else {
    t += "\n# No certificate was found (SSL_TYPE): submission and submissions need one.\n"
         "# [tls]\n# cert = \"tls/fullchain.pem\"\n# key = \"tls/privkey.pem\"\n";
  }
  if (!trusted_.empty()) {
    std::vector<std::string> quoted;
    for (const auto& n : trusted_) quoted.push_back(tomlString(n));
    t += "\n[proxy_protocol]\n";
    if (trusted_default_)
      t += "# CHANGE: the addresses of your HAProxy / load balancers (only they may send PROXY headers)\n";
    t += fmt::format("trusted_networks = [{}]{}\n", fmt::join(quoted, ", "), src(trusted_src_));
    if (header_timeout_ms_)
      t += fmt::format("header_timeout = \"{}\"{}\n", formatDurationMs(*header_timeout_ms_), src(header_timeout_src_));
  }
  if (max_size_ || max_recipients_) {
    t += "\n[smtp]\n";
    if (max_size_) t += fmt::format("max_message_size = {}{}\n", *max_size_, src(max_size_src_));
    if (max_recipients_) t += fmt::format("max_recipients = {}   # smtpd_recipient_limit\n", *max_recipients_);
  } else {
    t += fmt::format(
        "\n# DMS's default message size limit was {} bytes; Postern's is 25 MiB ([smtp] max_message_size).\n",
        kDmsDefaultMessageSize);
  }
  if (have_dkim_) t += "\n[dkim]\nkeys = \"dkim\"   # <keys>/<domain>/<selector>.key\n";
  // First match wins: the sender-domain routes before the default one.
  std::vector<const RoutePlan*> ordered;
  for (const auto& r : routes_)
    if (!r.sender_domain.empty()) ordered.push_back(&r);
  for (const auto& r : routes_)
    if (r.sender_domain.empty()) ordered.push_back(&r);
  for (const RoutePlan* rp : ordered) {
    const RoutePlan& r = *rp;
    t += fmt::format("\n[[route]]{}\n", src(r.source));
    if (!r.sender_domain.empty()) t += fmt::format("sender_domains = [{}]\n", tomlString(r.sender_domain));
    t += fmt::format("relay = {}\ntls = {}\n", tomlString(r.relay), tomlString(r.tls));
    if (!r.auth_file.empty()) t += fmt::format("auth_file = {}\n", tomlString(r.auth_file));
  }
  for (const auto& l : listeners_) {
    bool needs_tls = l.service != "smtp" && l.service != "imap" && l.service != "pop3";
    std::string prefix = needs_tls && cert_.empty() ? "# " : "";
    t += fmt::format("\n{}[[listener]]{}\n{}service = {}\n{}address = \"0.0.0.0:{}\"\n{}proxy_protocol = {}\n", prefix,
                     src(l.proxy_source), prefix, tomlString(l.service), prefix, l.port, prefix, tomlString(l.proxy));
  }
  return t;
}

Plan Importer::run() {
  listeners_ = {{"smtp", 25}, {"submission", 587}, {"submissions", 465}};
  doMainCf();  // before the env: postfix-main.cf is applied after DMS's own settings
  doEnv();
  if (imap_on_ && f_.imap) listeners_.insert(listeners_.end(), {{"imap", 143}, {"imaps", 993}});
  if (pop3_on_ && f_.pop3) listeners_.insert(listeners_.end(), {{"pop3", 110}, {"pop3s", 995}});
  if (!f_.imap && imap_on_ && !imap_explicit_)
    note("", "DMS serves IMAP (143, 993) by default; Postern has no IMAP yet: keep Dovecot serving the same Maildirs");
  doMasterCf();
  doDovecotCf();
  trustedNetworks();
  doAccounts();
  doVirtual();
  doLocalAliases();
  doRegexp();
  doQuotas();
  doRelayMap();
  doDkim();
  doOtherFiles();

  if (hostname_.empty())
    warning("", 0, "no hostname found (OVERRIDE_HOSTNAME, myhostname): set 'hostname' in the generated file");
  if (f_.server_user) {
    std::string uid =
        env_.count("DMS_VMAIL_UID") && !env_["DMS_VMAIL_UID"].value.empty() ? env_["DMS_VMAIL_UID"].value : "5000";
    warning("", 0,
            fmt::format("[server] user = \"postern\": the server gives the Maildir folders under [mailbox] root to "
                        "that user, while DMS's Dovecot reads them as uid {}; until Postern serves IMAP, set user to "
                        "an account with uid {}",
                        shown(uid), shown(uid)));
  }
  if (cert_.empty())
    warning("", 0,
            "no certificate: the submission and submissions listeners are written commented out; add [tls] "
            "and uncomment them");
  if (have_virtual_ || !extra_aliases_.empty()) {
    std::string v = virtual_text_;
    if (!extra_aliases_.empty()) {
      if (!v.empty() && v.back() != '\n') v += '\n';
      v += "\n# Converted by postern import from postfix-aliases.cf and postfix-regexp.cf:\n" + extra_aliases_;
    }
    plan_.files.push_back({"virtual.cf", v, 0600});
  }
  plan_.toml = renderToml();

  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    if (a.file != b.file) return a.file < b.file;
    if (a.line != b.line) return a.line < b.line;
    return a.seq < b.seq;
  });
  for (auto& e : entries_) plan_.report.push_back(std::move(e.text));
  return std::move(plan_);
}

// Whether the configuration loader accepts `snippet` (after a minimal valid base): no error
// is located inside the snippet.
bool accepts(std::string_view snippet) {
  std::string base =
      "hostname = \"probe.invalid\"\n"
      "[[listener]]\n"
      "service = \"smtp\"\n"
      "address = \"127.0.0.1:2525\"\n";
  const uint32_t first = 5;
  auto r = config::loadFromString(base + std::string(snippet), "/nonexistent/postern-import-probe.toml");
  for (const auto& d : r.diagnostics)
    if (d.severity == config::Diagnostic::Severity::kError && d.pos.line >= first) return false;
  return true;
}

}  // namespace

Features detectFeatures() {
  Features f;
  f.server_user = accepts("[server]\nuser = \"root\"\ngroup = \"root\"\n");
  f.routes = accepts("[[route]]\nrelay = \"relay.invalid:587\"\ntls = \"starttls\"\n");
  f.dkim = accepts("[dkim]\nkeys = \"/\"\n");
  f.quotas = accepts("[directory]\nquotas = \"/dev/null\"\n");
  f.imap = accepts("[[listener]]\nservice = \"imap\"\naddress = \"127.0.0.1:2143\"\n");
  f.pop3 = accepts("[[listener]]\nservice = \"pop3\"\naddress = \"127.0.0.1:2110\"\n");
  return f;
}

Plan planImport(const ImportInput& in, const Features& features) {
  return Importer(in, features).run();
}

}  // namespace postern::import
