// postern import: postfix-main.cf, postfix-master.cf, accounts, aliases and the relay map (see importer.h).
#include "import/importer.h"

#include "directory/quotas.h"

namespace postern::import::detail {

// ---- postfix-main.cf and postfix-master.cf ----------------------------------------------

namespace {

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

}  // namespace

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

// ---- accounts and aliases ---------------------------------------------------------------

namespace {

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

}  // namespace

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
    // What Postern's own quotas parser reads decides (a Dovecot percentage does not parse
    // there, and a copied line it refuses would make the whole imported config invalid).
    if (!directory::parseQuotaSize(e.size)) {
      notCarried(name, e.line, what, "a size Postern reads is bytes or B/k/M/G/T (a percentage is Dovecot's own)");
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

}  // namespace postern::import::detail
