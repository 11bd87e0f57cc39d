#include "cli/commands.h"

#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "app/control.h"
#include "app/control_request.h"
#include "app/server.h"
#include "config/config.h"
#include "directory/accounts.h"
#include "directory/aliases.h"
#include "directory/directory.h"
#include "directory/file_edit.h"
#include "directory/quotas.h"
#include "io/env.h"
#include "log/log.h"
#include "tls/tls_context.h"
#include "util/time_text.h"
#include "protect/protector.h"
#include "spool/spool.h"
#include "util/counters.h"
#include "util/file_source.h"
#include "util/fs.h"
#include "util/strings.h"

#include <fmt/format.h>

namespace postern::cli {

int usage(int status) {
  std::fprintf(status ? stderr : stdout,
               "usage: postern <command> [--config FILE]\n"
               "  serve                              run the server in the foreground (logs to stderr)\n"
               "  config check                       validate the configuration (exit 0 valid, 1 invalid)\n"
               "  config show                        print every listener's effective settings\n"
               "  account add|del|passwd ADDRESS     [--password-stdin]\n"
               "  account list\n"
               "  alias add ALIAS TARGET[,TARGET...] | alias del ALIAS | alias list\n"
               "  ban list | ban add IP [--for DURATION] | ban del IP\n"
               "  queue list | queue show ID | queue retry ID|--all | queue delete ID | queue bounce ID\n"
               "  dkim keygen DOMAIN [--selector S] [--type rsa|ed25519] [--bits N]   prints the DNS TXT record\n"
               "  doctor [--through [LISTENER=]HOST:PORT] [--ca FILE]\n"
               "  cert status                        every configured certificate: names, issuer, expiry\n"
               "  import docker-mailserver DIR [--output FILE] [--dry-run] [--force]\n"
               "  verify --ip IP [--helo NAME] [--mail-from ADDR] [--json] [FILE|-]   SPF/DKIM/DMARC/ARC of a message\n"
               "  version\n"
               "default configuration: %s\n",
               kDefaultConfigPath);
  return status;
}

namespace {

// Loads the configuration, printing diagnostics; null on errors.
std::shared_ptr<const config::Config> loadConfig(const Args& a, bool print_warnings) {
  config::LoadResult r = config::load(a.config_path);
  for (const auto& d : r.diagnostics) {
    if (d.severity == config::Diagnostic::Severity::kError || print_warnings)
      std::fprintf(stderr, "%s\n", d.toString().c_str());
  }
  return r.config;
}

std::optional<std::string> readPassword(const Args& a, const std::string& prompt) {
  std::string pw;
  if (a.password_stdin || !isatty(STDIN_FILENO)) {
    if (!std::getline(std::cin, pw)) return std::nullopt;
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
  }
  std::fprintf(stderr, "%s", prompt.c_str());
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  bool ok = static_cast<bool>(std::getline(std::cin, pw));
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::fprintf(stderr, "\n");
  if (!ok) return std::nullopt;
  std::string again;
  std::fprintf(stderr, "Again: ");
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  ok = static_cast<bool>(std::getline(std::cin, again));
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::fprintf(stderr, "\n");
  if (!ok || again != pw) {
    std::fprintf(stderr, "postern: the passwords differ\n");
    return std::nullopt;
  }
  return pw;
}

int fail(const Status& s) {
  std::fprintf(stderr, "postern: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

int runServe(const Args& a) {
  auto cfg = loadConfig(a, true);
  if (!cfg) {
    std::fprintf(stderr, "postern: not starting: the configuration has errors\n");
    return 1;
  }
  log::Level level = cfg->log_level == "debug"  ? log::Level::kDebug
                     : cfg->log_level == "warn" ? log::Level::kWarn
                     : cfg->log_level == "error" ? log::Level::kError
                                                 : log::Level::kInfo;
  log::init(cfg->log_format == config::LogFormat::kJson ? log::Format::kJson : log::Format::kText, level);
  return app::serve(cfg);
}

// `config check` of the quotas file: a bad line is an error with its file and line; a
// quota for an address that is no account is noted (it never applies). True when valid.
static bool checkQuotasFile(const std::string& path, const directory::Directory* dir) {
  if (path.empty()) return true;
  Result<std::string> text = readRegularFile(path);
  if (!text) return text.status().code() == Status::Code::kNotFound;   // warned by the loader
  auto quotas = directory::parseQuotas(*text, path);
  if (!quotas) {
    std::fprintf(stderr, "%s\n", quotas.status().message().c_str());
    return false;
  }
  for (const auto& q : quotas->entries)
    if (dir != nullptr && dir->findAccount(q.address) == nullptr)
      std::fprintf(stderr, "%s:%zu: note: %s is not an account: its quota never applies\n", path.c_str(), q.line,
                   q.address.c_str());
  return true;
}

int runConfig(const Args& a) {
  if (a.positional.size() != 2 || (a.positional[1] != "check" && a.positional[1] != "show")) return usage(2);
  config::LoadResult r = config::load(a.config_path);
  if (r.config) {
    auto certs = tls::checkCertificates(*r.config);
    r.diagnostics.insert(r.diagnostics.end(), certs.begin(), certs.end());
  }
  for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", d.toString().c_str());
  bool directory_ok = true;
  if (r.config) {
    // The accounts and aliases files are part of the configuration an operator checks:
    // a bad line is reported with its file and line, extra fields with a note.
    std::vector<std::string> notes;
    auto dir = directory::loadDirectory(r.config->accounts_path, r.config->aliases_path, &notes);
    for (const auto& n : notes) std::fprintf(stderr, "%s\n", n.c_str());
    if (!dir) {
      std::fprintf(stderr, "%s\n", dir.status().message().c_str());
      directory_ok = false;
    } else {
      // Lines that load but can never receive mail (the server refuses them at RCPT).
      for (const auto& e : directory::mailboxNameErrors(**dir, r.config->accounts_path, r.config->aliases_path)) {
        std::fprintf(stderr, "%s\n", e.c_str());
        directory_ok = false;
      }
    }
    if (!checkQuotasFile(r.config->quotas_path, dir ? dir->get() : nullptr)) directory_ok = false;
  }
  if (!r.config || r.hasErrors() || !directory_ok) {
    std::fprintf(stderr, "%s: configuration is invalid\n", a.config_path.c_str());
    return 1;
  }
  if (a.positional[1] == "show") {
    std::printf("%s", config::describe(*r.config).c_str());
    return 0;
  }
  std::printf("%s: configuration is valid (%zu listener%s)\n", a.config_path.c_str(), r.config->listeners.size(),
              r.config->listeners.size() == 1 ? "" : "s");
  return 0;
}

int runAccount(const Args& a) {
  if (a.positional.size() < 2) return usage(2);
  const std::string& sub = a.positional[1];
  auto cfg = loadConfig(a, false);
  if (!cfg) return 1;
  if (sodium_init() < 0) return 1;
  const std::string& path = cfg->accounts_path;
  if (sub == "list" && a.positional.size() == 2) {
    auto text = readFile(path);
    if (!text) return fail(text.status());
    auto parsed = directory::parseAccounts(*text, path);
    if (!parsed) return fail(parsed.status());
    for (const auto& acct : parsed->accounts)
      std::printf("%s %s\n", acct.address.c_str(), std::string(directory::schemeName(acct.scheme)).c_str());
    return 0;
  }
  if (a.positional.size() != 3) return usage(2);
  const std::string& address = a.positional[2];
  if (sub == "del") {
    if (Status s = directory::deleteAccount(path, address); !s) return fail(s);
    std::printf("deleted account %s\n", address.c_str());
    return 0;
  }
  if (sub == "add" || sub == "passwd") {
    auto pw = readPassword(a, "Password for " + address + ": ");
    if (!pw) return fail(Status::invalid("no password given"));
    if (pw->empty()) return fail(Status::invalid("the password must not be empty"));
    Status s = sub == "add" ? directory::addAccount(path, address, *pw) : directory::setPassword(path, address, *pw);
    if (!s) return fail(s);
    std::printf("%s account %s\n", sub == "add" ? "added" : "changed password of", address.c_str());
    return 0;
  }
  return usage(2);
}

int runAlias(const Args& a) {
  if (a.positional.size() < 2) return usage(2);
  const std::string& sub = a.positional[1];
  auto cfg = loadConfig(a, false);
  if (!cfg) return 1;
  const std::string& path = cfg->aliases_path;
  if (sub == "list" && a.positional.size() == 2) {
    auto text = readFile(path);
    if (!text) {
      if (::access(path.c_str(), F_OK) != 0) return 0;   // no aliases yet
      return fail(text.status());
    }
    auto parsed = directory::parseAliases(*text, path);
    if (!parsed) return fail(parsed.status());
    for (const auto& al : parsed->aliases) {
      std::string targets;
      for (const auto& t : al.targets) targets += (targets.empty() ? "" : ",") + t;
      std::printf("%s %s\n", al.source.c_str(), targets.c_str());
    }
    return 0;
  }
  if (sub == "add" && a.positional.size() == 4) {
    // The local domains, to check targets that would be mailboxes. Without a readable
    // directory only the alias's own domain counts as local.
    auto dir = directory::loadDirectory(cfg->accounts_path, cfg->aliases_path, nullptr);
    const directory::Directory* local = dir ? dir->get() : nullptr;
    if (Status s = directory::addAlias(path, a.positional[2], a.positional[3], local); !s) return fail(s);
    std::printf("added alias %s -> %s\n", a.positional[2].c_str(), a.positional[3].c_str());
    return 0;
  }
  if (sub == "del" && a.positional.size() == 3) {
    if (Status s = directory::deleteAlias(path, a.positional[2]); !s) return fail(s);
    std::printf("deleted alias %s\n", a.positional[2].c_str());
    return 0;
  }
  return usage(2);
}

namespace {
// Prints an "ok"/"error: " reply of the control socket; the exit status.
int printReply(const std::string& reply) {
  if (reply.rfind("ok\n", 0) == 0) {
    std::fputs(reply.c_str() + 3, stdout);
    return 0;
  }
  std::fprintf(stderr, "postern: %s", reply.rfind("error: ", 0) == 0 ? reply.c_str() + 7 : reply.c_str());
  return 1;
}
}  // namespace

int runBan(const Args& a) {
  if (a.positional.size() < 2) return usage(2);
  const std::string& sub = a.positional[1];
  app::ControlRequest req;
  if (sub == "list" && a.positional.size() == 2) {
    req.kind = app::ControlRequest::Kind::kBanList;
  } else if ((sub == "add" || sub == "del") && a.positional.size() == 3) {
    req.kind = sub == "add" ? app::ControlRequest::Kind::kBanAdd : app::ControlRequest::Kind::kBanDel;
    req.target = a.positional[2];
    if (req.target.find_first_of(" \t\r\n") != std::string::npos)
      return fail(Status::invalid(fmt::format("not an address: '{}'", req.target)));
    req.reason = "manual ban from the command line";
    if (!a.ban_for.empty()) {   // otherwise [protect] ban_time, below
      auto ms = parseDurationMs(a.ban_for);
      if (!ms || *ms < 1000) return fail(Status::invalid("--for needs a duration such as 30m, 2h or 7d"));
      req.seconds = *ms / 1000;
    }
  } else {
    return usage(2);
  }
  auto cfg = loadConfig(a, false);
  if (!cfg) return 1;
  if (req.kind == app::ControlRequest::Kind::kBanAdd && req.seconds == 0)
    req.seconds = std::max<uint64_t>(1, cfg->protect.ban_time_ms / 1000);
  const std::string request = app::formatControlRequest(req);
  std::string reply;
  auto r = app::controlRequest(cfg->stateDir() + "/control.sock", request);
  if (!r) return fail(r.status());   // e.g. EACCES: a server may be running; never fall back
  if (*r) {
    reply = **r;
  } else {
    // No server running: work on the bans file directly; the server reads it at start.
    if (Status s = makeDirs(cfg->stateDir()); !s) return fail(s);
    Counters counters;
    protect::Protector p(cfg->protect, {}, cfg->stateDir() + "/bans", counters);
    if (Status s = p.load(); !s) return fail(s);
    reply = app::executeControl(app::ControlTargets{&p, nullptr, nullptr}, request);
  }
  return printReply(reply);
}

// `cert status`: every configured certificate, read the way the server reads it. `cert renew`
// needs the built-in ACME client, which is not there yet: it says so and how renewals work now.
int runCert(const Args& a) {
  const std::string sub = a.positional.size() >= 2 ? a.positional[1] : "";
  if (sub == "renew") {
    std::fprintf(stderr,
                 "postern: cert renew needs the built-in ACME client ([acme]), which this version does not have; "
                 "renew with certbot, acme.sh or Traefik: the server loads the new files by itself (docs/tls.md)\n");
    return 1;
  }
  if (sub != "status" || a.positional.size() != 2) return usage(2);
  auto cfg = loadConfig(a, false);
  if (!cfg) return 1;
  if (!cfg->tls.configured) {
    std::printf("no certificates: [tls] is not configured\n");
    return 0;
  }
  int status = 0;
  for (const auto& st : tls::certificateStatus(cfg->tls)) {
    if (!st.info) {
      std::printf("error source=%s reason=\"%s\"\n", st.source.c_str(), st.error.c_str());
      status = 1;
      continue;
    }
    const auto& i = *st.info;
    bool expired = i.not_after <= std::time(nullptr);
    if (expired) status = 1;
    std::string names;
    for (const auto& n : i.names) names += (names.empty() ? "" : ",") + n;
    std::printf("%s names=%s source=\"%s\" issuer=\"%s\" not_after=%s days_left=%ld key=%s serial=%s "
                "renewal=external\n",
                expired ? "expired" : i.days_left <= tls::kExpirySoonDays ? "expiring" : "ok", names.c_str(),
                i.cert_path.c_str(), i.issuer.c_str(), isoUtc(uint64_t(i.not_after) * 1000000).c_str(), i.days_left,
                i.key_type.c_str(), i.serial_hex.c_str());
  }
  return status;
}

int runQueue(const Args& a) {
  using Kind = app::ControlRequest::Kind;
  if (a.positional.size() < 2) return usage(2);
  const std::string& sub = a.positional[1];
  app::ControlRequest req;
  if (sub == "list" && a.positional.size() == 2) {
    req.kind = Kind::kQueueList;
  } else if (sub == "retry" && a.all && a.positional.size() == 2) {
    req.kind = Kind::kQueueRetryAll;
  } else if (a.positional.size() == 3 && (sub == "show" || sub == "retry" || sub == "delete" || sub == "bounce")) {
    req.kind = sub == "show" ? Kind::kQueueShow : sub == "retry" ? Kind::kQueueRetry
             : sub == "delete" ? Kind::kQueueDelete : Kind::kQueueBounce;
    req.target = a.positional[2];
  } else {
    return usage(2);
  }
  // Checked here too, for a precise message before any socket is touched.
  auto parsed = app::parseControlRequest(app::formatControlRequest(req));
  if (!parsed) return fail(parsed.status());
  auto cfg = loadConfig(a, false);
  if (!cfg) return 1;
  const std::string request = app::formatControlRequest(*parsed);
  auto r = app::controlRequest(cfg->stateDir() + "/control.sock", request);
  if (!r) return fail(r.status());
  if (*r) return printReply(**r);
  // No server running: open the spool (its lock keeps a server from starting meanwhile).
  log::init(log::Format::kText, log::Level::kWarn);
  auto sp = spool::Spool::open(io::posixEnv(), cfg->spoolDir(), nullptr);
  if (!sp) return fail(sp.status());
  return printReply(app::executeControl(app::ControlTargets{nullptr, nullptr, sp->get()}, request));
}

}  // namespace postern::cli
