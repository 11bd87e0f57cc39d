// `postern import docker-mailserver`: the plan from a DMS config folder (dms_import.h).
// What maps to what is documented in docs/migration-docker-mailserver.md; the steps live in
// import_env.cc, import_postfix.cc and import_misc.cc (importer.h), each reason for leaving
// a setting behind next to the setting it concerns (the shared ones in importer.h).
#include "import/dms_import.h"

#include "import/importer.h"

namespace postern::import {

namespace detail {

void Importer::setProxy(const std::string& service, const std::string& mode, const std::string& src, bool from_master) {
  for (auto& l : listeners_) {
    if (l.service != service) continue;
    if (l.proxy_from_master && !from_master) return;  // master.cf -o beats main.cf
    l.proxy = mode;
    l.proxy_source = src;
    l.proxy_from_master = from_master;
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

}  // namespace detail

namespace {

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
  return detail::Importer(in, features).run();
}

}  // namespace postern::import
