// postern import: dovecot.cf, DKIM, files the importer does not read, and the trusted proxies (see importer.h).
#include "import/importer.h"

namespace postern::import::detail {

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

}  // namespace postern::import::detail
