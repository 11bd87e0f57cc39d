// Internal to src/import/: the Importer behind planImport (dms_import.h), with the helpers
// and the reasons its parts share. One file per source of settings:
//   import_env.cc      mailserver.env (hostname, log level, TLS, size, relay variables, the rest)
//   import_postfix.cc  postfix-main.cf, postfix-master.cf, accounts, aliases, relay map
//   import_misc.cc     dovecot.cf, DKIM keys and tables, files the importer does not read,
//                      the trusted proxies
//   dms_import.cc      the TOML, the order of the steps, and the entry points
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "directory/accounts.h"
#include "directory/aliases.h"
#include "import/dms_files.h"
#include "import/dms_import.h"
#include "util/ip.h"
#include "util/strings.h"

namespace postern::import::detail {

// DMS mounts the config folder here; paths in mailserver.env and KeyTable point inside it.
inline constexpr std::string_view kContainerConfigDir = "/tmp/docker-mailserver/";
// DMS copies the config folder's opendkim/ here; KeyTable paths point inside it.
inline constexpr std::string_view kContainerOpenDkimDir = "/etc/opendkim/";
// Longest value quoted back in the report.
inline constexpr size_t kMaxShownValue = 80;
// DMS's default for POSTFIX_MESSAGE_SIZE_LIMIT, in bytes.
inline constexpr uint64_t kDmsDefaultMessageSize = 10240000;

inline constexpr std::string_view kRouteReason = "outbound relay routes are not implemented yet (issue 12)";
inline constexpr std::string_view kDkimReason = "DKIM signing is not implemented yet";
inline constexpr std::string_view kQuotaReason = "mailbox quotas are not implemented yet";
inline constexpr std::string_view kImapReason =
    "Postern has no IMAP yet: keep Dovecot serving the same Maildirs (docs/migration-docker-mailserver.md)";
inline constexpr std::string_view kPop3Reason =
    "Postern has no POP3 yet: keep Dovecot serving the same Maildirs (docs/migration-docker-mailserver.md)";
inline constexpr std::string_view kFilterReason =
    "Postern has no built-in content or virus filter: run rspamd (or another milter) yourself and add it as a "
    "[[milter]]; greylisting is [protect.greylist] (docs/configuration.md)";
inline constexpr std::string_view kLogReason =
    "Postern logs one line per event to stderr; reports and rotation belong to the log collector";
inline constexpr std::string_view kAccountSourceReason =
    "accounts come only from the accounts file (postfix-accounts.cf); LDAP, OAuth2 and saslauthd are not supported";
inline constexpr std::string_view kFetchReason = "fetching mail from other servers is not implemented";
inline constexpr std::string_view kSrsReason =
    "SRS is Postern's [srs] section (off by default: enabled = true, domain, exclude_domains), not mapped: it has "
    "its own secret, so addresses DMS rewrote do not verify here";

inline std::string tomlString(std::string_view s) {
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

inline std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxShownValue)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > kMaxShownValue) out += "...";
  return out;
}

inline bool isSecretName(std::string_view name) {
  std::string n = toLower(name);
  return n.find("password") != std::string::npos || n.find("secret") != std::string::npos ||
         n.find("passwd") != std::string::npos;
}

inline std::string baseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

inline bool startsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
inline bool endsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Where a report entry sorts: the input files in a fixed order, then by line.
inline int fileRank(std::string_view file) {
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

}  // namespace postern::import::detail
