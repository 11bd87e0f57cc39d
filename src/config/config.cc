// Configuration loading: TOML (toml++) into the validated Config snapshot.
// Each table has a fixed set of keys; anything else is an error with a did-you-mean.
#include "config/config.h"

#include <pwd.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "directory/quotas.h"
#include "util/strings.h"

namespace postern::config {

std::string_view proxyModeName(ProxyMode m) {
  switch (m) {
    case ProxyMode::kOff: return "off";
    case ProxyMode::kRequired: return "required";
    case ProxyMode::kMixed: return "mixed";
  }
  return "?";
}

std::string Position::toString() const {
  if (line == 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

std::string Diagnostic::toString() const {
  const char* sev = severity == Severity::kError ? "error" : severity == Severity::kWarning ? "warning" : "note";
  return fmt::format("{}: {}: {}", pos.toString(), sev, message);
}

bool LoadResult::hasErrors() const {
  for (const auto& d : diagnostics)
    if (d.severity == Diagnostic::Severity::kError) return true;
  return false;
}

namespace {

using Severity = Diagnostic::Severity;

class Loader {
 public:
  Loader(std::string path) : path_(std::move(path)) {
    auto slash = path_.rfind('/');
    base_dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  }

  LoadResult run(std::string_view text);

 private:
  Position pos(const toml::source_region& r) const {
    return Position{path_, static_cast<uint32_t>(r.begin.line), static_cast<uint32_t>(r.begin.column)};
  }
  Position pos(const toml::node& n) const { return pos(n.source()); }
  void error(const Position& p, std::string msg) { diags_.push_back({Severity::kError, p, std::move(msg)}); }
  void warning(const Position& p, std::string msg) { diags_.push_back({Severity::kWarning, p, std::move(msg)}); }
  void note(const Position& p, std::string msg) { diags_.push_back({Severity::kNote, p, std::move(msg)}); }

  // Reports every key of `t` that is not in `known`.
  void checkKeys(const toml::table& t, std::string_view where, const std::vector<std::string>& known);
  bool getString(const toml::table& t, std::string_view key, std::string& out);
  bool getDuration(const toml::table& t, std::string_view key, uint64_t& out_ms);
  bool getSize(const toml::table& t, std::string_view key, uint64_t& out);
  bool getUnsigned(const toml::table& t, std::string_view key, uint64_t max, unsigned& out);
  bool getNetworks(const toml::table& t, std::string_view key, std::vector<Cidr>& out);
  void parseDns(const toml::table& t);
  const toml::table* getTable(const toml::table& t, std::string_view key);
  std::string resolvePath(const std::string& p) const {
    if (p.empty() || p[0] == '/') return p;
    return base_dir_ + "/" + p;
  }
  void checkReadable(const std::string& path, const Position& p, std::string_view what, bool required);
  void loadListeners(const toml::table& root);
  void loadRoutes(const toml::table& root);
  void loadProtect(const toml::table& t);
  void loadGreylist(const toml::table& t);
  void loadSrs(const toml::table& root);
  void loadVerify(const toml::table& root);
  void loadMilters(const toml::table& root);
  bool getBool(const toml::table& t, std::string_view key, bool& out);
  void crossChecks();

  std::string path_;
  std::string base_dir_;
  std::vector<Diagnostic> diags_;
  Config c_;
};

void Loader::checkKeys(const toml::table& t, std::string_view where, const std::vector<std::string>& known) {
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    bool ok = false;
    for (const auto& n : known) ok = ok || n == key;
    if (ok) continue;
    std::string msg = fmt::format("unknown setting '{}' in {}", key, where);
    if (auto s = didYouMean(key, known)) msg += fmt::format(" (did you mean '{}'?)", *s);
    else msg += fmt::format(" (known: {})", fmt::join(known, ", "));
    error(pos(k.source()), msg);
  }
}

bool Loader::getString(const toml::table& t, std::string_view key, std::string& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  if (!n->is_string()) {
    error(pos(*n), fmt::format("'{}' must be a string", key));
    return false;
  }
  out = n->as_string()->get();
  return true;
}

bool Loader::getDuration(const toml::table& t, std::string_view key, uint64_t& out_ms) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  if (n->is_integer()) {
    int64_t v = n->as_integer()->get();
    if (v < 0) {
      error(pos(*n), fmt::format("'{}' must not be negative", key));
      return false;
    }
    out_ms = static_cast<uint64_t>(v) * 1000;
    return true;
  }
  if (!n->is_string()) {
    error(pos(*n), fmt::format("'{}' must be a duration such as \"30s\", \"5m\" or \"1h\"", key));
    return false;
  }
  auto ms = parseDurationMs(n->as_string()->get());
  if (!ms) {
    error(pos(*n), fmt::format("'{}': bad duration \"{}\" (use e.g. \"500ms\", \"30s\", \"5m\", \"1h\", \"2d\")", key,
                               n->as_string()->get()));
    return false;
  }
  out_ms = *ms;
  return true;
}

bool Loader::getSize(const toml::table& t, std::string_view key, uint64_t& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  if (n->is_integer() && n->as_integer()->get() >= 0) {
    out = static_cast<uint64_t>(n->as_integer()->get());
    return true;
  }
  if (n->is_string()) {
    if (auto s = parseSize(n->as_string()->get())) {
      out = *s;
      return true;
    }
  }
  error(pos(*n), fmt::format("'{}' must be a size such as 26214400 or \"25MiB\"", key));
  return false;
}

bool Loader::getUnsigned(const toml::table& t, std::string_view key, uint64_t max, unsigned& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  if (!n->is_integer() || n->as_integer()->get() < 0 || static_cast<uint64_t>(n->as_integer()->get()) > max) {
    error(pos(*n), fmt::format("'{}' must be an integer from 0 to {}", key, max));
    return false;
  }
  out = static_cast<unsigned>(n->as_integer()->get());
  return true;
}

bool Loader::getNetworks(const toml::table& t, std::string_view key, std::vector<Cidr>& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  const toml::array* arr = n->as_array();
  if (!arr) {
    error(pos(*n), fmt::format("'{}' must be an array of networks such as [\"10.0.0.0/8\", \"::1/128\"]", key));
    return false;
  }
  out.clear();
  bool ok = true;
  for (const auto& e : *arr) {
    if (!e.is_string()) {
      error(pos(e), fmt::format("'{}': each entry must be a string", key));
      ok = false;
      continue;
    }
    std::string s = e.as_string()->get();
    auto cidr = Cidr::parse(s);
    if (!cidr) {
      error(pos(e), fmt::format("'{}': bad network \"{}\" (expected an address or CIDR like 10.0.0.0/8 with no host bits set)",
                                key, s));
      ok = false;
      continue;
    }
    if (cidr->isEverything() && key == "trusted_networks")
      warning(pos(e), fmt::format("'{}' contains {}: every address on the internet may send a PROXY header and claim "
                                  "any client address; list only your load balancers",
                                  key, s));
    else if (cidr->isEverything())
      warning(pos(e), fmt::format("'{}' contains {}: it covers every address", key, s));
    out.push_back(*cidr);
  }
  return ok;
}

void Loader::parseDns(const toml::table& t) {
  checkKeys(t, "[dns]", {"servers", "timeout", "cache_size"});
  if (const toml::node* n = t.get("servers")) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      error(pos(*n), "'servers' must be an array of addresses such as [\"127.0.0.1:53\", \"[::1]:53\"]");
    } else {
      for (const auto& e : *arr) {
        if (!e.is_string()) {
          error(pos(e), "'servers': each entry must be a string such as \"127.0.0.1:53\"");
          continue;
        }
        std::string s = e.as_string()->get();
        // "IP:PORT", "[IPv6]:PORT", or a bare address (port 53); a bare IPv6 address too.
        auto ep = Endpoint::parse(s);
        if (!ep) {
          std::string_view bare = s;
          if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
          if (auto a = IpAddress::parse(bare)) ep = Endpoint{*a, kDefaultDnsPort};
        }
        if (!ep || ep->port == 0) {
          error(pos(e), fmt::format("'servers': bad address \"{}\" (expected IP, IP:PORT or [IPv6]:PORT)", s));
          continue;
        }
        if (std::find(c_.dns.servers.begin(), c_.dns.servers.end(), *ep) != c_.dns.servers.end()) {
          error(pos(e), fmt::format("'servers': {} is listed twice", ep->toString()));
          continue;
        }
        c_.dns.servers.push_back(*ep);
      }
    }
  }
  if (getDuration(t, "timeout", c_.dns.timeout_ms)) {
    if (c_.dns.timeout_ms < 100 || c_.dns.timeout_ms > kMaxDnsTimeoutMs) {
      error(pos(*t.get("timeout")), fmt::format("'timeout' must be from 100ms to {}", formatDurationMs(kMaxDnsTimeoutMs)));
      c_.dns.timeout_ms = kDefaultDnsTimeoutMs;
    }
  }
  if (getUnsigned(t, "cache_size", kMaxDnsCacheSize, c_.dns.cache_size) && c_.dns.cache_size == 0)
    error(pos(*t.get("cache_size")), "'cache_size' must be at least 1");
}

const toml::table* Loader::getTable(const toml::table& t, std::string_view key) {
  const toml::node* n = t.get(key);
  if (!n) return nullptr;
  if (!n->is_table()) {
    error(pos(*n), fmt::format("'{}' must be a table ([{}])", key, key));
    return nullptr;
  }
  return n->as_table();
}

void Loader::checkReadable(const std::string& path, const Position& p, std::string_view what, bool required) {
  if (::access(path.c_str(), R_OK) == 0) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) error(p, fmt::format("{} '{}' is a directory", what, path));
    return;
  }
  std::string msg = fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno));
  if (required) error(p, msg);
  else warning(p, msg + " (treated as empty until it appears)");
}

LoadResult Loader::run(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text, path_);
  } catch (const toml::parse_error& e) {
    Position p{path_, static_cast<uint32_t>(e.source().begin.line), static_cast<uint32_t>(e.source().begin.column)};
    error(p, std::string(e.description()));
    return LoadResult{nullptr, diags_};
  }
  c_.path = path_;
  c_.base_dir = base_dir_;
  Position file_pos{path_, 0, 0};

  checkKeys(root, "the top level",
            {"hostname", "data_dir", "log_format", "log_level", "server", "spool", "queue", "directory", "mailbox", "tls",
             "proxy_protocol", "smtp", "protect", "listener", "dkim", "dns", "route", "srs", "verify", "milter"});

  if (!getString(root, "hostname", c_.hostname)) {
    if (!root.get("hostname")) error(Position{path_, 1, 1}, "'hostname' is required (the name in the greeting and Received headers)");
  } else if (c_.hostname.empty() || c_.hostname.find_first_of(" \t\r\n") != std::string::npos) {
    error(pos(*root.get("hostname")), "'hostname' must be a domain name such as \"mail.example.com\"");
  }
  c_.data_dir = "/var/lib/postern";
  getString(root, "data_dir", c_.data_dir);
  c_.data_dir = resolvePath(c_.data_dir);
  std::string fmt_name = "text";
  if (getString(root, "log_format", fmt_name)) {
    if (fmt_name == "text") c_.log_format = LogFormat::kText;
    else if (fmt_name == "json") c_.log_format = LogFormat::kJson;
    else error(pos(*root.get("log_format")), fmt::format("'log_format' must be \"text\" or \"json\", not \"{}\"", fmt_name));
  }
  if (getString(root, "log_level", c_.log_level)) {
    if (c_.log_level != "debug" && c_.log_level != "info" && c_.log_level != "warn" && c_.log_level != "error")
      error(pos(*root.get("log_level")), "'log_level' must be one of debug, info, warn, error");
  }

  if (const toml::table* t = getTable(root, "server")) {
    checkKeys(*t, "[server]", {"user", "group", "threads", "shutdown_timeout", "max_connections"});
    if (getString(*t, "user", c_.server.user) && c_.server.user.empty())
      error(pos(*t->get("user")), "'user' must name a user (\"root\" to keep running as root)");
    getString(*t, "group", c_.server.group);
  }
  // The user is looked up where the server would run; elsewhere (a config written for
  // another machine) this is only a warning, but `serve` started as root stops on it.
  if (c_.server.user != "root" && ::getpwnam(c_.server.user.c_str()) == nullptr) {
    const toml::table* t = getTable(root, "server");
    const toml::node* n = t ? t->get("user") : nullptr;
    warning(n ? pos(*n) : Position{path_, 0, 0},
            fmt::format("[server] user '{}' does not exist here: started as root, the server would refuse to start "
                        "(scripts/install-deps creates 'postern')", c_.server.user));
  }
  if (const toml::table* t = getTable(root, "server")) {
    getUnsigned(*t, "threads", 256, c_.server.threads);
    getDuration(*t, "shutdown_timeout", c_.server.shutdown_timeout_ms);
    if (getUnsigned(*t, "max_connections", 1'000'000, c_.server.max_connections) && c_.server.max_connections == 0)
      error(pos(*t->get("max_connections")), "'max_connections' must be at least 1 (0 would refuse every connection)");
  }

  if (const toml::table* t = getTable(root, "spool")) {
    checkKeys(*t, "[spool]", {"commit_wait", "commit_batch", "segment_size"});
    if (getSize(*t, "segment_size", c_.spool.segment_size) &&
        (c_.spool.segment_size < kMinSegmentSize || c_.spool.segment_size > kMaxSegmentSize))
      error(pos(*t->get("segment_size")), fmt::format("'segment_size' must be between {} KiB and {} MiB",
                                                      kMinSegmentSize / 1024, kMaxSegmentSize / (1024 * 1024)));
    if (getDuration(*t, "commit_wait", c_.spool.commit_wait_ms) && c_.spool.commit_wait_ms > kMaxCommitWaitMs)
      error(pos(*t->get("commit_wait")), fmt::format("'commit_wait' must be at most {}ms (every commit in a batch "
                                                     "waits that long for its 250)", kMaxCommitWaitMs));
    if (getUnsigned(*t, "commit_batch", 65536, c_.spool.commit_batch) && c_.spool.commit_batch == 0)
      error(pos(*t->get("commit_batch")), "'commit_batch' must be at least 1");
  }

  if (const toml::table* t = getTable(root, "queue")) {
    checkKeys(*t, "[queue]", {"lifetime", "retry_min", "retry_max", "delay_warning", "remote_port",
                              "destination_concurrency", "initial_concurrency", "recipients_per_transaction",
                              "mta_sts", "ca_file", "mta_sts_port"});
    if (const toml::node* n = t->get("mta_sts")) {
      if (!n->is_boolean()) error(pos(*n), "'mta_sts' must be true or false");
      else c_.queue.mta_sts = n->as_boolean()->get();
    }
    if (getString(*t, "ca_file", c_.queue.ca_file)) {
      c_.queue.ca_file = resolvePath(c_.queue.ca_file);
      checkReadable(c_.queue.ca_file, pos(*t->get("ca_file")), "CA bundle", true);
    }
    unsigned sts_port = c_.queue.mta_sts_port;
    if (getUnsigned(*t, "mta_sts_port", 65535, sts_port)) {
      if (sts_port == 0) error(pos(*t->get("mta_sts_port")), "'mta_sts_port' must be a port from 1 to 65535");
      c_.queue.mta_sts_port = static_cast<uint16_t>(sts_port);
    }
    unsigned port = c_.queue.remote_port;
    if (getUnsigned(*t, "remote_port", 65535, port)) {
      if (port == 0) error(pos(*t->get("remote_port")), "'remote_port' must be a port from 1 to 65535");
      c_.queue.remote_port = static_cast<uint16_t>(port);
    }
    if (getUnsigned(*t, "destination_concurrency", 1000, c_.queue.destination_concurrency) &&
        c_.queue.destination_concurrency == 0)
      error(pos(*t->get("destination_concurrency")), "'destination_concurrency' must be at least 1");
    if (getUnsigned(*t, "initial_concurrency", 1000, c_.queue.initial_concurrency) && c_.queue.initial_concurrency == 0)
      error(pos(*t->get("initial_concurrency")), "'initial_concurrency' must be at least 1");
    c_.queue.initial_concurrency = std::min(c_.queue.initial_concurrency, c_.queue.destination_concurrency);
    if (getUnsigned(*t, "recipients_per_transaction", 1000, c_.queue.recipients_per_transaction) &&
        c_.queue.recipients_per_transaction == 0)
      error(pos(*t->get("recipients_per_transaction")), "'recipients_per_transaction' must be at least 1");
    getDuration(*t, "lifetime", c_.queue.lifetime_ms);
    getDuration(*t, "retry_min", c_.queue.retry_min_ms);
    getDuration(*t, "retry_max", c_.queue.retry_max_ms);
    getDuration(*t, "delay_warning", c_.queue.delay_warning_ms);
    if (c_.queue.retry_min_ms < 1000 && t->get("retry_min"))
      error(pos(*t->get("retry_min")), "'retry_min' must be at least 1s");
    if (c_.queue.retry_max_ms < c_.queue.retry_min_ms) {
      const toml::node* at = t->get("retry_max") ? t->get("retry_max") : t->get("retry_min");
      error(pos(*at), fmt::format("'retry_max' ({}) must not be shorter than 'retry_min' ({})",
                                  formatDurationMs(c_.queue.retry_max_ms), formatDurationMs(c_.queue.retry_min_ms)));
    }
    if (c_.queue.lifetime_ms < 1000 && t->get("lifetime"))
      error(pos(*t->get("lifetime")), "'lifetime' must be at least 1s");
  }

  if (const toml::table* t = getTable(root, "dns")) parseDns(*t);

  c_.accounts_path = "accounts.cf";
  c_.aliases_path = "virtual.cf";
  Position accounts_pos = file_pos, aliases_pos = file_pos;
  if (const toml::table* t = getTable(root, "directory")) {
    checkKeys(*t, "[directory]", {"accounts", "aliases", "quotas", "default_quota"});
    if (getString(*t, "accounts", c_.accounts_path)) accounts_pos = pos(*t->get("accounts"));
    if (getString(*t, "aliases", c_.aliases_path)) aliases_pos = pos(*t->get("aliases"));
    // Quotas: the file in docker-mailserver's format, and a default in the same units.
    if (getString(*t, "quotas", c_.quotas_path)) {
      c_.quotas_path = resolvePath(c_.quotas_path);
      checkReadable(c_.quotas_path, pos(*t->get("quotas")), "quotas file", false);
    }
    if (const toml::node* n = t->get("default_quota")) {
      std::optional<uint64_t> q;
      if (n->is_integer() && n->as_integer()->get() >= 0) q = static_cast<uint64_t>(n->as_integer()->get());
      else if (n->is_string()) q = directory::parseQuotaSize(n->as_string()->get());
      if (q && *q <= directory::kMaxQuotaBytes) c_.default_quota = *q;
      else error(pos(*n), "'default_quota' must be a size such as \"1G\" or \"500M\" (B, k, M, G, T: powers of 1024; 0: no limit)");
    }
  }
  c_.accounts_path = resolvePath(c_.accounts_path);
  c_.aliases_path = resolvePath(c_.aliases_path);
  checkReadable(c_.accounts_path, accounts_pos, "accounts file", true);
  checkReadable(c_.aliases_path, aliases_pos, "aliases file", false);

  c_.dkim.keys_dir = resolvePath("dkim");   // the folder may be absent: then nothing is signed
  if (const toml::table* t = getTable(root, "dkim")) {
    checkKeys(*t, "[dkim]", {"keys"});
    if (getString(*t, "keys", c_.dkim.keys_dir)) {
      c_.dkim.keys_dir = resolvePath(c_.dkim.keys_dir);
      struct stat st;
      if (::stat(c_.dkim.keys_dir.c_str(), &st) != 0)
        warning(pos(*t->get("keys")), fmt::format("[dkim] keys folder {} does not exist: no mail will be signed "
                                                  "(postern dkim keygen DOMAIN creates it)", c_.dkim.keys_dir));
    }
  }

  loadSrs(root);
  loadVerify(root);
  loadMilters(root);

  c_.mailbox_root = c_.data_dir + "/mail";
  if (const toml::table* t = getTable(root, "mailbox")) {
    checkKeys(*t, "[mailbox]", {"root"});
    if (getString(*t, "root", c_.mailbox_root)) c_.mailbox_root = resolvePath(c_.mailbox_root);
  }

  if (const toml::table* t = getTable(root, "tls")) {
    checkKeys(*t, "[tls]", {"cert", "key", "certificate", "traefik", "min_version", "ciphers", "ciphersuites"});
    c_.tls.configured = true;
    bool has_cert = getString(*t, "cert", c_.tls.default_cert.cert);
    bool has_key = getString(*t, "key", c_.tls.default_cert.key);
    c_.tls.default_cert.pos = pos(*t);
    bool has_traefik = t->get("traefik") != nullptr;
    if (!has_cert && (has_key || !has_traefik))
      error(pos(*t), "[tls] needs 'cert' (a PEM certificate chain) or a [[tls.traefik]] source");
    if (!has_key && (has_cert || !has_traefik)) error(pos(*t), "[tls] needs 'key' (the PEM private key)");
    if (const toml::node* tn = t->get("traefik")) {
      const toml::array* arr = tn->as_array();
      if (!arr || !arr->is_array_of_tables()) {
        error(pos(*tn), "'traefik' must be written as [[tls.traefik]] tables with file (and resolver, names)");
      } else {
        for (const auto& e : *arr) {
          const toml::table& tt = *e.as_table();
          checkKeys(tt, "[[tls.traefik]]", {"file", "resolver", "names"});
          TraefikSource src;
          src.pos = pos(tt);
          if (!getString(tt, "file", src.file)) error(pos(tt), "[[tls.traefik]] needs 'file' (Traefik's acme.json)");
          else src.file = resolvePath(src.file);
          getString(tt, "resolver", src.resolver);
          if (const toml::node* nn = tt.get("names")) {
            const toml::array* na = nn->as_array();
            bool ok = na && !na->empty();
            if (ok)
              for (const auto& n : *na) {
                if (!n.is_string() || n.as_string()->get().empty()) ok = false;
                else src.names.push_back(n.as_string()->get());
              }
            if (!ok) error(pos(*nn), "'names' must be a list of domain names such as [\"mail.example.com\"]");
          } else {
            src.names.push_back(c_.hostname);
          }
          c_.tls.traefik.push_back(std::move(src));
        }
      }
    }
    if (has_cert) {
      c_.tls.default_cert.cert = resolvePath(c_.tls.default_cert.cert);
      checkReadable(c_.tls.default_cert.cert, pos(*t->get("cert")), "certificate file", true);
    }
    if (has_key) {
      c_.tls.default_cert.key = resolvePath(c_.tls.default_cert.key);
      checkReadable(c_.tls.default_cert.key, pos(*t->get("key")), "key file", true);
    }
    if (getString(*t, "min_version", c_.tls.min_version) && c_.tls.min_version != "1.2" &&
        c_.tls.min_version != "1.3")
      error(pos(*t->get("min_version")), "'min_version' must be \"1.2\" or \"1.3\" (older versions are not offered)");
    getString(*t, "ciphers", c_.tls.ciphers);
    getString(*t, "ciphersuites", c_.tls.ciphersuites);
    if (const toml::node* certs = t->get("certificate")) {
      const toml::array* arr = certs->as_array();
      if (!arr || !arr->is_array_of_tables()) {
        error(pos(*certs), "'certificate' must be written as [[tls.certificate]] tables with cert and key");
      } else {
        for (const auto& e : *arr) {
          const toml::table& ct = *e.as_table();
          checkKeys(ct, "[[tls.certificate]]", {"cert", "key"});
          CertificatePair p;
          p.pos = pos(ct);
          if (!getString(ct, "cert", p.cert)) error(pos(ct), "[[tls.certificate]] needs 'cert'");
          if (!getString(ct, "key", p.key)) error(pos(ct), "[[tls.certificate]] needs 'key'");
          if (!p.cert.empty()) {
            p.cert = resolvePath(p.cert);
            checkReadable(p.cert, pos(*ct.get("cert")), "certificate file", true);
          }
          if (!p.key.empty()) {
            p.key = resolvePath(p.key);
            checkReadable(p.key, pos(*ct.get("key")), "key file", true);
          }
          c_.tls.extra.push_back(std::move(p));
        }
      }
    }
  }

  c_.proxy.trusted_networks = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  if (const toml::table* t = getTable(root, "proxy_protocol")) {
    checkKeys(*t, "[proxy_protocol]", {"trusted_networks", "header_timeout"});
    c_.proxy.section_present = true;
    c_.proxy.pos = pos(*t);
    getNetworks(*t, "trusted_networks", c_.proxy.trusted_networks);
    if (getDuration(*t, "header_timeout", c_.proxy.header_timeout_ms) && c_.proxy.header_timeout_ms == 0)
      error(pos(*t->get("header_timeout")), "'header_timeout' must be greater than zero");
  }

  if (const toml::table* t = getTable(root, "smtp")) {
    checkKeys(*t, "[smtp]", {"max_message_size", "max_recipients", "max_line_length", "command_timeout", "data_timeout",
                             "transaction_timeout", "bare_newlines", "greeting_delay", "max_errors"});
    if (getSize(*t, "max_message_size", c_.smtp.max_message_size) && c_.smtp.max_message_size > kMaxMessageSizeLimit)
      error(pos(*t->get("max_message_size")),
            fmt::format("'max_message_size' must be at most {} MiB (a queued message is stored again as one spool "
                        "record when the spool compacts)", kMaxMessageSizeLimit / (1024 * 1024)));
    getUnsigned(*t, "max_recipients", 100000, c_.smtp.max_recipients);
    if (getUnsigned(*t, "max_line_length", 1'000'000, c_.smtp.max_line_length) && c_.smtp.max_line_length < 1000)
      error(pos(*t->get("max_line_length")), "'max_line_length' must be at least 1000 (RFC 5321 §4.5.3.1.6)");
    getDuration(*t, "command_timeout", c_.smtp.command_timeout_ms);
    getDuration(*t, "data_timeout", c_.smtp.data_timeout_ms);
    getDuration(*t, "transaction_timeout", c_.smtp.transaction_timeout_ms);
    getDuration(*t, "greeting_delay", c_.smtp.greeting_delay_ms);
    if (getUnsigned(*t, "max_errors", 1000, c_.smtp.max_errors) && c_.smtp.max_errors == 0)
      error(pos(*t->get("max_errors")), "'max_errors' must be at least 1");
    std::string bn;
    if (getString(*t, "bare_newlines", bn)) {
      if (bn == "reject") c_.smtp.bare_newlines = BareNewlinePolicy::kReject;
      else if (bn == "normalize") c_.smtp.bare_newlines = BareNewlinePolicy::kNormalize;
      else error(pos(*t->get("bare_newlines")), "'bare_newlines' must be \"reject\" or \"normalize\"");
    }
    if (c_.smtp.max_recipients == 0) error(pos(*t), "'max_recipients' must be at least 1");
  }

  // The host's own loopback (local applications sending through localhost) is exempt from
  // limits and bans unless allow_networks says otherwise (Postfix exempts its host too).
  c_.protect.allow_networks = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  if (const toml::table* t = getTable(root, "protect")) loadProtect(*t);

  loadRoutes(root);
  loadListeners(root);
  crossChecks();

  LoadResult r;
  r.diagnostics = diags_;
  if (!r.hasErrors()) r.config = std::make_shared<const Config>(std::move(c_));
  return r;
}

void Loader::loadProtect(const toml::table& t) {
  Protect& p = c_.protect;
  checkKeys(t, "[protect]", {"allow_networks", "window", "auth_failures", "relay_attempts", "unknown_recipients",
                             "protocol_errors", "early_talkers", "ban_time", "max_ban_time", "ipv6_prefix",
                             "max_connections_per_client", "max_connection_rate", "max_messages_per_user",
                             "max_recipients_per_user", "max_auth_attempts", "dnsbl", "greylist"});
  getNetworks(t, "allow_networks", p.allow_networks);
  getDuration(t, "window", p.window_ms);
  getUnsigned(t, "auth_failures", 100000, p.auth_failures.threshold);
  getUnsigned(t, "relay_attempts", 100000, p.relay_attempts.threshold);
  getUnsigned(t, "unknown_recipients", 100000, p.unknown_recipients.threshold);
  getUnsigned(t, "protocol_errors", 100000, p.protocol_errors.threshold);
  getUnsigned(t, "early_talkers", 100000, p.early_talkers.threshold);
  getDuration(t, "ban_time", p.ban_time_ms);
  getDuration(t, "max_ban_time", p.max_ban_time_ms);
  if (getUnsigned(t, "ipv6_prefix", 128, p.ipv6_prefix) && p.ipv6_prefix < 32)
    error(pos(*t.get("ipv6_prefix")), "'ipv6_prefix' must be between 32 and 128");
  getUnsigned(t, "max_connections_per_client", 1'000'000, p.max_connections_per_client);
  getUnsigned(t, "max_connection_rate", 1'000'000, p.max_connection_rate);
  getUnsigned(t, "max_messages_per_user", 100'000'000, p.max_messages_per_user);
  getUnsigned(t, "max_recipients_per_user", 100'000'000, p.max_recipients_per_user);
  getUnsigned(t, "max_auth_attempts", 1000, p.max_auth_attempts);
  if (p.max_ban_time_ms < p.ban_time_ms) error(pos(t), "'max_ban_time' must not be shorter than 'ban_time'");
  if (const toml::table* g = getTable(t, "greylist")) loadGreylist(*g);
  const toml::table* d = getTable(t, "dnsbl");
  if (!d) return;
  checkKeys(*d, "[protect.dnsbl]", {"zone", "threshold", "resolver", "timeout"});
  unsigned threshold = 1;
  if (getUnsigned(*d, "threshold", 1000, threshold)) p.dnsbl.threshold = static_cast<int>(threshold);
  std::string resolver;
  if (getString(*d, "resolver", resolver)) {
    auto ep = Endpoint::parse(resolver);
    if (!ep) ep = Endpoint::parse(resolver + ":53");
    if (!ep) error(pos(*d->get("resolver")), fmt::format("bad resolver \"{}\" (expected IP or IP:PORT)", resolver));
    else p.dnsbl.resolver = *ep;
  }
  if (getDuration(*d, "timeout", p.dnsbl.timeout_ms) && p.dnsbl.timeout_ms == 0)
    error(pos(*d->get("timeout")), "'timeout' must be greater than zero");
  const toml::node* zn = d->get("zone");
  if (!zn) {
    error(pos(*d), "[protect.dnsbl] needs at least one [[protect.dnsbl.zone]] with a name");
    return;
  }
  const toml::array* arr = zn->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    error(pos(*zn), "'zone' must be written as [[protect.dnsbl.zone]] tables");
    return;
  }
  for (const auto& e : *arr) {
    const toml::table& zt = *e.as_table();
    checkKeys(zt, "[[protect.dnsbl.zone]]", {"name", "action", "score", "codes"});
    DnsblZone z;
    z.pos = pos(zt);
    if (!getString(zt, "name", z.name) || z.name.empty() || z.name.find(' ') != std::string::npos) {
      error(pos(zt), "[[protect.dnsbl.zone]] needs 'name', a DNS zone such as \"zen.spamhaus.org\"");
      continue;
    }
    std::string action = "reject";
    if (getString(zt, "action", action) && action != "reject" && action != "score")
      error(pos(*zt.get("action")), "'action' must be \"reject\" or \"score\"");
    z.reject = action == "reject";
    unsigned score = 1;
    if (getUnsigned(zt, "score", 1000, score)) z.score = static_cast<int>(score);
    if (const toml::node* cn = zt.get("codes")) {
      const toml::array* ca = cn->as_array();
      if (!ca) {
        error(pos(*cn), "'codes' must be an array of addresses such as [\"127.0.0.2\", \"127.0.0.3\"]");
      } else {
        for (const auto& ce : *ca) {
          std::optional<IpAddress> ip;
          if (ce.is_string()) ip = IpAddress::parseV4(ce.as_string()->get());
          if (!ip) error(pos(ce), "'codes': each entry must be an IPv4 address such as \"127.0.0.2\"");
          else z.codes.push_back(*ip);
        }
      }
    }
    p.dnsbl.zones.push_back(std::move(z));
  }
}

void Loader::loadGreylist(const toml::table& t) {
  Greylist& g = c_.protect.greylist;
  checkKeys(t, "[protect.greylist]", {"enabled", "delay", "retry_window", "pass_lifetime", "ipv4_prefix", "ipv6_prefix",
                                      "auto_allow", "max_entries"});
  if (const toml::node* n = t.get("enabled")) {
    if (!n->is_boolean()) error(pos(*n), "'enabled' must be true or false");
    else g.enabled = n->as_boolean()->get();
  }
  getDuration(t, "delay", g.delay_ms);
  getDuration(t, "retry_window", g.retry_window_ms);
  getDuration(t, "pass_lifetime", g.pass_lifetime_ms);
  if (getUnsigned(t, "ipv4_prefix", 32, g.ipv4_prefix) && g.ipv4_prefix < 8)
    error(pos(*t.get("ipv4_prefix")), "'ipv4_prefix' must be between 8 and 32");
  if (getUnsigned(t, "ipv6_prefix", 128, g.ipv6_prefix) && g.ipv6_prefix < 32)
    error(pos(*t.get("ipv6_prefix")), "'ipv6_prefix' must be between 32 and 128");
  getUnsigned(t, "auto_allow", 1'000'000, g.auto_allow);
  if (getUnsigned(t, "max_entries", 100'000'000, g.max_entries) && g.max_entries < 100)
    error(pos(*t.get("max_entries")), "'max_entries' must be at least 100");
  if (g.retry_window_ms <= g.delay_ms) error(pos(t), "'retry_window' must be longer than 'delay'");
  if (g.pass_lifetime_ms < g.retry_window_ms) error(pos(t), "'pass_lifetime' must not be shorter than 'retry_window'");
}

namespace {
// A domain in a route's list: lower case, no trailing dot; false when it cannot be one.
bool normalizeDomain(std::string& d) {
  if (!d.empty() && d.back() == '.') d.pop_back();
  if (d.empty() || d.size() > 253) return false;
  for (char& ch : d) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_')) return false;
  }
  return d.front() != '.' && d.find("..") == std::string::npos;
}
}  // namespace

bool Loader::getBool(const toml::table& t, std::string_view key, bool& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  if (!n->is_boolean()) {
    error(pos(*n), fmt::format("'{}' must be true or false", key));
    return false;
  }
  out = n->as_boolean()->get();
  return true;
}

// [verify]: see config.h and docs/configuration.md.
void Loader::loadVerify(const toml::table& root) {
  Verify& v = c_.verify;
  v.authserv_id = toLower(c_.hostname);
  const toml::table* t = getTable(root, "verify");
  if (!t) return;
  v.pos = pos(*t);
  checkKeys(*t, "[verify]", {"enabled", "authserv_id", "spf", "spf_reject", "dkim", "dkim_max_signatures", "dkim_length_tag",
                             "dmarc", "dmarc_enforce", "arc", "junk_header"});
  getBool(*t, "enabled", v.enabled);
  if (getString(*t, "authserv_id", v.authserv_id) &&
      (v.authserv_id.empty() || v.authserv_id.find_first_of(" \t\r\n;()\"") != std::string::npos))
    error(pos(*t->get("authserv_id")), "'authserv_id' must be a name without spaces, ';', '(' or quotes (RFC 8601 §2.5)");
  getBool(*t, "spf", v.spf);
  if (const toml::node* n = t->get("spf_reject")) {
    const toml::array* arr = n->as_array();
    if (!arr) error(pos(*n), "'spf_reject' must be an array such as [\"fail\"]");
    for (size_t i = 0; arr && i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      std::string r = e.is_string() ? toLower(e.as_string()->get()) : std::string();
      if (r == "fail") v.spf_reject |= unsigned(SpfResultSet::kFail);
      else if (r == "softfail") v.spf_reject |= unsigned(SpfResultSet::kSoftFail);
      else if (r == "permerror") v.spf_reject |= unsigned(SpfResultSet::kPermError);
      else if (r == "temperror") v.spf_reject |= unsigned(SpfResultSet::kTempError);
      else error(pos(e), fmt::format("'spf_reject': \"{}\" is not one of fail, softfail, permerror, temperror", r));
    }
  }
  getBool(*t, "dkim", v.dkim);
  if (getUnsigned(*t, "dkim_max_signatures", kMaxDkimSignatures, v.dkim_max_signatures) && v.dkim_max_signatures == 0)
    error(pos(*t->get("dkim_max_signatures")),
          fmt::format("'dkim_max_signatures' must be from 1 to {} (use dkim = false to check none)", kMaxDkimSignatures));
  std::string length;
  if (getString(*t, "dkim_length_tag", length)) {
    if (length == "honour" || length == "honor") v.dkim_honour_length = true;
    else if (length == "ignore") v.dkim_honour_length = false;
    else error(pos(*t->get("dkim_length_tag")), "'dkim_length_tag' must be \"honour\" or \"ignore\"");
  }
  getBool(*t, "dmarc", v.dmarc);
  getBool(*t, "dmarc_enforce", v.dmarc_enforce);
  getBool(*t, "arc", v.arc);
  if (getString(*t, "junk_header", v.junk_header) && !v.junk_header.empty()) {
    auto colon = v.junk_header.find(':');
    if (colon == std::string::npos || colon == 0 || v.junk_header.find_first_of(" \t", 0) < colon)
      error(pos(*t->get("junk_header")), "'junk_header' must be \"Name: value\", such as \"X-Spam: Yes\"");
  }
  if (v.dmarc && !v.spf && !v.dkim)
    warning(v.pos, "[verify] dmarc needs spf or dkim results; with both off every DMARC check fails");
}

// [[milter]]: see config.h and docs/configuration.md.
void Loader::loadMilters(const toml::table& root) {
  const toml::node* n = root.get("milter");
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    error(pos(*n), "'milter' must be written as [[milter]] tables");
    return;
  }
  for (const auto& e : *arr) {
    const toml::table& t = *e.as_table();
    checkKeys(t, "[[milter]]", {"address", "default_action", "connect_timeout", "command_timeout", "message_timeout",
                                "stages", "services"});
    Milter m;
    m.pos = pos(t);
    if (!getString(t, "address", m.name)) {
      if (!t.get("address")) error(m.pos, "[[milter]] needs 'address' (\"127.0.0.1:11332\" or \"unix:/path/to/socket\")");
    } else if (m.name.rfind("unix:", 0) == 0) {
      m.unix_path = resolvePath(m.name.substr(5));
      if (m.name.size() == 5) error(pos(*t.get("address")), "'address': \"unix:\" needs a socket path");
    } else if (auto ep = Endpoint::parse(m.name); ep && ep->port != 0) {
      m.tcp = *ep;
    } else {
      error(pos(*t.get("address")),
            fmt::format("'address': bad milter address \"{}\" (expected IP:PORT, [IPv6]:PORT or unix:/path)", m.name));
    }
    std::string action;
    if (getString(t, "default_action", action)) {
      if (action == "tempfail") m.default_action = MilterDefault::kTempFail;
      else if (action == "accept") m.default_action = MilterDefault::kAccept;
      else error(pos(*t.get("default_action")), "'default_action' must be \"tempfail\" or \"accept\"");
    }
    for (auto [key, slot] : {std::pair<const char*, uint64_t*>{"connect_timeout", &m.connect_timeout_ms},
                             {"command_timeout", &m.command_timeout_ms},
                             {"message_timeout", &m.message_timeout_ms}}) {
      if (getDuration(t, key, *slot) && (*slot < kMinMilterTimeoutMs || *slot > kMaxMilterTimeoutMs))
        error(pos(*t.get(key)), fmt::format("'{}' must be from {} to {}", key, formatDurationMs(kMinMilterTimeoutMs),
                                            formatDurationMs(kMaxMilterTimeoutMs)));
    }
    if (const toml::node* sn = t.get("stages")) {
      const toml::array* sa = sn->as_array();
      if (!sa) error(pos(*sn), "'stages' must be an array such as [\"connect\", \"helo\", \"mail\", \"rcpt\", \"header\", \"body\"]");
      else m.stages = 0;
      static const std::vector<std::string> kStages(std::begin(kMilterStageNames), std::end(kMilterStageNames));
      for (size_t i = 0; sa && i < sa->size(); ++i) {
        const toml::node& s = *sa->get(i);
        std::string v = s.is_string() ? s.as_string()->get() : std::string();
        auto it = std::find(kStages.begin(), kStages.end(), v);
        if (it == kStages.end()) {
          std::string msg = fmt::format("'stages': unknown stage \"{}\" (known: {}; end-of-message is always sent)", v,
                                        fmt::join(kStages, ", "));
          error(pos(s), msg);
          continue;
        }
        m.stages |= 1u << (it - kStages.begin());
      }
    }
    if (const toml::node* sv = t.get("services")) {
      const toml::array* va = sv->as_array();
      if (!va) error(pos(*sv), "'services' must be an array such as [\"smtp\"]");
      for (size_t i = 0; va && i < va->size(); ++i) {
        const toml::node& s = *va->get(i);
        std::string v = s.is_string() ? s.as_string()->get() : std::string();
        if (v != "smtp" && v != "submission" && v != "submissions") {
          error(pos(s), fmt::format("'services': \"{}\" is not an SMTP service (smtp, submission, submissions)", v));
          continue;
        }
        m.services.push_back(v);
      }
    }
    c_.milters.push_back(std::move(m));
  }
}

// [srs]: see config.h. The domain defaults to the hostname, the secret file to the state folder.
void Loader::loadSrs(const toml::table& root) {
  Srs& s = c_.srs;
  s.domain = toLower(c_.hostname);
  s.secret_file = c_.stateDir() + "/srs-secret";
  const toml::table* t = getTable(root, "srs");
  if (!t) return;
  checkKeys(*t, "[srs]", {"enabled", "domain", "secret_file", "max_age", "exclude_domains"});
  if (const toml::node* n = t->get("enabled")) {
    if (!n->is_boolean()) error(pos(*n), "'enabled' must be true or false");
    else s.enabled = n->as_boolean()->get();
  }
  if (getString(*t, "domain", s.domain)) {
    s.domain = toLower(s.domain);
    if (!s.domain.empty() && s.domain.back() == '.') s.domain.pop_back();
    if (s.domain.empty() || s.domain.find_first_of(" \t\r\n@=[]") != std::string::npos)
      error(pos(*t->get("domain")), "'domain' must be a domain name such as \"mail.example.com\"");
  }
  if (getString(*t, "secret_file", s.secret_file)) {
    if (s.secret_file.empty()) error(pos(*t->get("secret_file")), "'secret_file' must not be empty");
    s.secret_file = resolvePath(s.secret_file);
  }
  uint64_t max_age_ms = uint64_t(s.max_age_days) * 86'400'000;
  if (getDuration(*t, "max_age", max_age_ms)) {
    constexpr uint64_t kDayMs = 86'400'000;
    if (max_age_ms % kDayMs != 0 || max_age_ms < kDayMs || max_age_ms > kMaxSrsMaxAgeDays * kDayMs)
      error(pos(*t->get("max_age")), fmt::format("'max_age' must be whole days from \"1d\" to \"{}d\" (the SRS "
                                                 "timestamp counts days and wraps after 1024)", kMaxSrsMaxAgeDays));
    else s.max_age_days = static_cast<uint32_t>(max_age_ms / kDayMs);
  }
  if (const toml::node* n = t->get("exclude_domains")) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      error(pos(*n), "'exclude_domains' must be an array of domains such as [\"example.com\"]");
    } else {
      for (const auto& e : *arr) {
        std::string d = e.is_string() ? e.as_string()->get() : std::string();
        if (!normalizeDomain(d)) {
          error(pos(e), "'exclude_domains': each entry must be a domain name such as \"example.com\"");
          continue;
        }
        s.exclude_domains.push_back(std::move(d));
      }
    }
  }
}

// [[route]]: relay hosts and TLS policies by recipient or sender domain (DESIGN.md).
void Loader::loadRoutes(const toml::table& root) {
  const toml::node* n = root.get("route");
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    error(pos(*n), "'route' must be written as [[route]] tables");
    return;
  }
  size_t defaults = 0;
  for (const auto& e : *arr) {
    const toml::table& t = *e.as_table();
    checkKeys(t, "[[route]]", {"recipient_domains", "sender_domains", "relay", "tls", "auth_file", "ca_file"});
    Route r;
    r.pos = pos(t);
    for (const char* key : {"recipient_domains", "sender_domains"}) {
      const toml::node* dn = t.get(key);
      if (!dn) continue;
      const toml::array* da = dn->as_array();
      if (!da || da->empty()) {
        error(pos(*dn), fmt::format("'{}' must be a non-empty array of domains such as [\"example.org\"]", key));
        continue;
      }
      auto& out = std::string_view(key) == "recipient_domains" ? r.recipient_domains : r.sender_domains;
      for (const auto& d : *da) {
        std::string v = d.is_string() ? d.as_string()->get() : std::string();
        if (!d.is_string() || !normalizeDomain(v)) {
          error(pos(d), fmt::format("'{}': \"{}\" is not a domain name", key, v));
          continue;
        }
        out.push_back(std::move(v));
      }
    }
    if (!r.recipient_domains.empty() && !r.sender_domains.empty())
      error(r.pos, "a [[route]] takes recipient_domains or sender_domains, not both (write two routes)");
    std::string relay;
    if (getString(t, "relay", relay)) {
      // host:port, [v6]:port, or host alone (port 25).
      std::string host = relay, port;
      if (!relay.empty() && relay.front() == '[') {
        size_t close = relay.find(']');
        host = close == std::string::npos ? std::string() : relay.substr(1, close - 1);
        if (close != std::string::npos && close + 1 < relay.size()) {
          if (relay[close + 1] == ':') port = relay.substr(close + 2);
          else host.clear();
        }
      } else if (size_t colon = relay.rfind(':'); colon != std::string::npos) {
        host = relay.substr(0, colon);
        port = relay.substr(colon + 1);
      }
      unsigned long p = 25;
      bool port_ok = port.empty() || (port.find_first_not_of("0123456789") == std::string::npos && port.size() <= 5 &&
                                      (p = std::stoul(port)) >= 1 && p <= 65535);
      bool host_ok = !host.empty() && (IpAddress::parse(host).has_value() || normalizeDomain(host));
      if (!host_ok || !port_ok)
        error(pos(*t.get("relay")), fmt::format("'relay': \"{}\" is not host:port such as \"smtp.example.net:587\"", relay));
      r.relay_host = host;
      r.relay_port = static_cast<uint16_t>(p);
    }
    std::string tls;
    if (getString(t, "tls", tls)) {
      r.tls_given = true;
      static const std::pair<const char*, RouteTls> kNames[] = {
          {"none", RouteTls::kNone},     {"may", RouteTls::kMay},           {"encrypt", RouteTls::kEncrypt},
          {"verify", RouteTls::kVerify}, {"starttls", RouteTls::kStartTls}, {"implicit", RouteTls::kImplicit},
          {"dane", RouteTls::kDane}};
      bool found = false;
      for (const auto& [name, v] : kNames)
        if (tls == name) r.tls = v, found = true;
      if (!found && tls == "mta-sts") {
        // MTA-STS is honoured on every MX route but "none": the name is accepted for "may".
        r.tls = RouteTls::kMay;
        found = true;
        if (!r.relay_host.empty())
          error(pos(*t.get("tls")), "'tls = \"mta-sts\"' is for MX delivery; a relay takes starttls or implicit");
      }
      if (!found)
        error(pos(*t.get("tls")),
              fmt::format("'tls' must be none, may, encrypt, verify, dane, starttls or implicit, not \"{}\"", tls));
      else if (r.relay_host.empty() && (r.tls == RouteTls::kStartTls || r.tls == RouteTls::kImplicit))
        error(pos(*t.get("tls")), fmt::format("'tls = \"{}\"' needs a 'relay' (MX delivery takes none, may, encrypt, "
                                              "verify or dane)", tls));
      else if (!r.relay_host.empty() && r.tls == RouteTls::kDane)
        error(pos(*t.get("tls")), "'tls = \"dane\"' is for MX delivery (RFC 7672 authenticates MX hosts through "
                                  "their DNS); a relay takes starttls, implicit, verify or encrypt");
    } else if (!r.relay_host.empty()) {
      // A smarthost: on 465 TLS from the first byte, else STARTTLS with a checked certificate.
      r.tls = r.relay_port == 465 ? RouteTls::kImplicit : RouteTls::kStartTls;
    }
    if (getString(t, "auth_file", r.auth_file)) {
      r.auth_file = resolvePath(r.auth_file);
      if (r.relay_host.empty()) error(pos(*t.get("auth_file")), "'auth_file' needs a 'relay' (MX hosts take no AUTH)");
      checkReadable(r.auth_file, pos(*t.get("auth_file")), "relay credentials", true);
      if (r.tls == RouteTls::kNone || r.tls == RouteTls::kMay)
        warning(pos(*t.get("auth_file")), "the relay password would be sent without required TLS; set tls = "
                                          "\"starttls\" or \"implicit\"");
    }
    if (getString(t, "ca_file", r.ca_file)) {
      r.ca_file = resolvePath(r.ca_file);
      checkReadable(r.ca_file, pos(*t.get("ca_file")), "CA bundle", true);
    }
    if (r.matchesAll() && ++defaults == 2)
      warning(r.pos, "a second default [[route]] (no recipient_domains or sender_domains) is never used: the first wins");
    c_.routes.push_back(std::move(r));
  }
}

void Loader::loadListeners(const toml::table& root) {
  const toml::node* n = root.get("listener");
  if (!n) {
    error(Position{path_, 1, 1}, "no [[listener]] configured: nothing would accept mail");
    return;
  }
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    error(pos(*n), "'listener' must be written as [[listener]] tables");
    return;
  }
  for (const auto& e : *arr) {
    const toml::table& t = *e.as_table();
    checkKeys(t, "[[listener]]", {"service", "address", "proxy_protocol", "trusted_networks"});
    Listener l;
    l.pos = pos(t);
    bool ok = true;
    if (getString(t, "service", l.service_as_written)) {
      const toml::node& sn = *t.get("service");
      ServiceLookup s = lookupService(l.service_as_written);
      if (!s.info) {
        std::string msg = fmt::format("unknown service '{}'", l.service_as_written);
        if (s.suggestion) msg += fmt::format(" (did you mean '{}'?)", *s.suggestion);
        msg += "; services: smtp, submission, submissions, metrics";
        error(pos(sn), msg);
        ok = false;
      } else if (!s.info->implemented) {
        error(pos(sn), fmt::format("service '{}' is reserved but not implemented yet", s.info->name));
        ok = false;
      } else {
        if (s.deprecated_alias)
          warning(pos(sn), fmt::format("service '{}' is an old name: it is now '{}' (port {}, implicit TLS); "
                                       "write service = \"{}\"",
                                       l.service_as_written, s.info->name, s.info->standard_port, s.info->name));
        l.service = s.info;
        l.name = std::string(s.info->name);
      }
    } else if (!t.get("service")) {
      error(pos(t), "[[listener]] needs 'service' (smtp, submission, submissions or metrics)");
      ok = false;
    } else {
      ok = false;
    }
    std::string addr;
    if (getString(t, "address", addr)) {
      auto ep = Endpoint::parse(addr);
      if (!ep) {
        error(pos(*t.get("address")),
              fmt::format("bad listen address \"{}\" (expected IP:PORT such as \"0.0.0.0:25\" or \"[::]:25\")", addr));
        ok = false;
      } else {
        l.address = *ep;
      }
    } else if (!t.get("address") && l.service && l.service->service == Service::kMetrics) {
      // The metrics listener alone has a default: loopback, where only local scrapers reach it.
      l.address = *Endpoint::parse(fmt::format("127.0.0.1:{}", l.service->standard_port));
    } else if (!t.get("address")) {
      error(pos(t), "[[listener]] needs 'address' such as \"0.0.0.0:25\"");
      ok = false;
    } else {
      ok = false;
    }
    std::string mode;
    if (getString(t, "proxy_protocol", mode)) {
      if (mode == "off") l.proxy = ProxyMode::kOff;
      else if (mode == "required") l.proxy = ProxyMode::kRequired;
      else if (mode == "mixed") l.proxy = ProxyMode::kMixed;
      else {
        std::string msg = fmt::format("'proxy_protocol' must be \"off\", \"required\" or \"mixed\", not \"{}\"", mode);
        if (mode == "on" || mode == "true" || mode == "haproxy" || mode == "yes") msg += " (did you mean \"required\"?)";
        error(pos(*t.get("proxy_protocol")), msg);
      }
    } else if (const toml::node* pn = t.get("proxy_protocol"); pn && pn->is_boolean()) {
      // getString already reported the type; add the likely intent.
      diags_.back().message += " (\"required\", \"mixed\" or \"off\"; true is not accepted)";
    }
    l.trusted_networks = c_.proxy.trusted_networks;
    if (t.get("trusted_networks")) {
      if (getNetworks(t, "trusted_networks", l.trusted_networks)) l.trusted_networks_overridden = true;
      if (l.proxy == ProxyMode::kOff)
        warning(pos(*t.get("trusted_networks")),
                fmt::format("'trusted_networks' on listener '{}' has no effect while proxy_protocol = \"off\"",
                            l.name.empty() ? l.service_as_written : l.name));
    }
    if (ok) c_.listeners.push_back(std::move(l));
  }
}

void Loader::crossChecks() {
  // Two listeners on one port collide when the addresses are equal or either is a wildcard
  // of the same family.
  for (size_t i = 0; i < c_.listeners.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const auto& a = c_.listeners[i].address;
      const auto& b = c_.listeners[j].address;
      if (a.port != b.port || a.address.family() != b.address.family()) continue;
      bool wild_a = a.address.masked(0) == a.address, wild_b = b.address.masked(0) == b.address;
      if (a == b || wild_a || wild_b)
        error(c_.listeners[i].pos, fmt::format("listen address {} of listener '{}' collides with {} of listener '{}' at {}",
                                               a.toString(), c_.listeners[i].name, b.toString(), c_.listeners[j].name,
                                               c_.listeners[j].pos.toString()));
    }
  }
  bool any_proxy = false;
  for (const auto& l : c_.listeners) {
    if (l.service->implicit_tls || l.service->auth_required) {
      if (!c_.tls.configured)
        error(l.pos, fmt::format("listener '{}' needs TLS but there is no [tls] section with cert and key", l.name));
    }
    if (l.proxy != ProxyMode::kOff) any_proxy = true;
    if (l.proxy == ProxyMode::kRequired && l.address.address.isLoopback()) {
      bool reachable = false;
      for (const auto& n : l.trusted_networks)
        reachable = reachable || n.contains(*IpAddress::parse("127.0.0.1")) || n.contains(*IpAddress::parse("::1"));
      if (!reachable)
        warning(l.pos, fmt::format("listener '{}' on {} requires PROXY headers but listens on loopback and its "
                                   "trusted_networks do not include loopback: no proxy could ever connect",
                                   l.name, l.address.toString()));
    }
    if (l.service->service == Service::kMetrics && !l.address.address.isLoopback())
      warning(l.pos, fmt::format("metrics listener on {} is reachable from the network and has no authentication; "
                                 "listen on loopback (\"127.0.0.1:{}\") unless a firewall limits who can reach it",
                                 l.address.toString(), l.service->standard_port));
    if (l.proxy != ProxyMode::kOff && l.trusted_networks.empty())
      error(l.pos, fmt::format("listener '{}' has proxy_protocol = \"{}\" but trusted_networks is empty", l.name,
                               proxyModeName(l.proxy)));
  }
  if (c_.proxy.section_present && !any_proxy && !c_.listeners.empty())
    warning(c_.proxy.pos, "[proxy_protocol] settings apply to no listener: every [[listener]] has proxy_protocol = "
                          "\"off\" (set proxy_protocol = \"required\" or \"mixed\" on the listeners behind the proxy)");
  if (!c_.tls.configured)
    for (const auto& l : c_.listeners)
      if (l.service->offers_starttls && !l.service->auth_required)
        warning(l.pos, fmt::format("listener '{}' will not offer STARTTLS: no [tls] section", l.name));
}

}  // namespace

LoadResult loadFromString(std::string_view text, const std::string& path) {
  Loader l(path);
  return l.run(text);
}

LoadResult load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.diagnostics.push_back({Severity::kError, Position{path, 0, 0},
                             fmt::format("cannot read configuration file: {}", std::strerror(errno))});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadFromString(ss.str(), path);
}

const char* routeTlsName(RouteTls t) {
  switch (t) {
    case RouteTls::kNone: return "none";
    case RouteTls::kMay: return "may";
    case RouteTls::kEncrypt: return "encrypt";
    case RouteTls::kVerify: return "verify";
    case RouteTls::kStartTls: return "starttls";
    case RouteTls::kImplicit: return "implicit";
    case RouteTls::kDane: return "dane";
  }
  return "?";
}

std::string describe(const Config& c) {
  std::string out;
  out += fmt::format("config: {}\nhostname: {}\ndata_dir: {}\nlog_format: {}\nlog_level: {}\n", c.path, c.hostname,
                     c.data_dir, c.log_format == LogFormat::kJson ? "json" : "text", c.log_level);
  out += fmt::format("directory.accounts: {}\ndirectory.aliases: {}\n", c.accounts_path, c.aliases_path);
  out += fmt::format("directory.quotas: {}\ndirectory.default_quota: {}\nmailbox.root: {}\n",
                     c.quotas_path.empty() ? "(none)" : c.quotas_path,
                     c.default_quota == 0 ? "0 (no limit)" : std::to_string(c.default_quota), c.mailbox_root);
  if (c.tls.configured) {
    out += fmt::format("tls.cert: {}\ntls.key: {}\ntls.min_version: {}\n", c.tls.default_cert.cert,
                       c.tls.default_cert.key, c.tls.min_version);
    for (const auto& e : c.tls.extra) out += fmt::format("tls.certificate: {} {}\n", e.cert, e.key);
    for (const auto& e : c.tls.traefik)
      out += fmt::format("tls.traefik: {} resolver={} names={}\n", e.file, e.resolver.empty() ? "(any)" : e.resolver,
                         fmt::join(e.names, ","));
  } else {
    out += "tls: not configured\n";
  }
  out += fmt::format("smtp.max_message_size: {}\nsmtp.max_recipients: {}\nsmtp.max_line_length: {}\n",
                     c.smtp.max_message_size, c.smtp.max_recipients, c.smtp.max_line_length);
  out += fmt::format("smtp.command_timeout: {}\nsmtp.data_timeout: {}\nsmtp.transaction_timeout: {}\n",
                     formatDurationMs(c.smtp.command_timeout_ms), formatDurationMs(c.smtp.data_timeout_ms),
                     formatDurationMs(c.smtp.transaction_timeout_ms));
  out += fmt::format("smtp.bare_newlines: {}\nsmtp.greeting_delay: {}\nsmtp.max_errors: {}\n",
                     c.smtp.bare_newlines == BareNewlinePolicy::kReject ? "reject" : "normalize",
                     formatDurationMs(c.smtp.greeting_delay_ms), c.smtp.max_errors);
  out += fmt::format("server.user: {}\nserver.group: {}\n", c.server.user,
                     c.server.group.empty() ? std::string("(the user's primary group)") : c.server.group);
  out += fmt::format("server.threads: {}\nserver.shutdown_timeout: {}\nserver.max_connections: {}\n",
                     c.server.threads == 0 ? std::string("auto") : std::to_string(c.server.threads),
                     formatDurationMs(c.server.shutdown_timeout_ms), c.server.max_connections);
  out += fmt::format("spool.commit_wait: {}\nspool.commit_batch: {}\nspool.segment_size: {}\n",
                     formatDurationMs(c.spool.commit_wait_ms), c.spool.commit_batch, c.spool.segment_size);
  out += fmt::format("queue.lifetime: {}\nqueue.retry_min: {}\nqueue.retry_max: {}\nqueue.delay_warning: {}\n",
                     formatDurationMs(c.queue.lifetime_ms), formatDurationMs(c.queue.retry_min_ms),
                     formatDurationMs(c.queue.retry_max_ms), formatDurationMs(c.queue.delay_warning_ms));
  out += fmt::format("queue.remote_port: {}\nqueue.destination_concurrency: {}\nqueue.initial_concurrency: {}\n"
                     "queue.recipients_per_transaction: {}\nqueue.mta_sts: {}\nqueue.ca_file: {}\n",
                     c.queue.remote_port, c.queue.destination_concurrency, c.queue.initial_concurrency,
                     c.queue.recipients_per_transaction, c.queue.mta_sts ? "true" : "false",
                     c.queue.ca_file.empty() ? std::string("(system CA store)") : c.queue.ca_file);
  for (const auto& r : c.routes) {
    std::string match = !r.recipient_domains.empty()   ? fmt::format("recipient_domains={}", fmt::join(r.recipient_domains, ","))
                        : !r.sender_domains.empty()    ? fmt::format("sender_domains={}", fmt::join(r.sender_domains, ","))
                                                       : std::string("default");
    out += fmt::format("route: {} via={} tls={}{}\n", match,
                       r.relay_host.empty() ? std::string("mx")
                                            : fmt::format("{}:{}", r.relay_host, r.relay_port),
                       routeTlsName(r.tls), r.auth_file.empty() ? "" : " auth=yes");
  }
  out += fmt::format("dkim.keys: {}\n", c.dkim.keys_dir);
  out += fmt::format("srs.enabled: {}\nsrs.domain: {}\nsrs.secret_file: {}\nsrs.max_age: {}d\nsrs.exclude_domains: {}\n",
                     c.srs.enabled ? "true" : "false", c.srs.domain, c.srs.secret_file, c.srs.max_age_days,
                     c.srs.exclude_domains.empty() ? std::string("(none)")
                                                   : fmt::format("{}", fmt::join(c.srs.exclude_domains, ", ")));
  {
    const Verify& v = c.verify;
    std::vector<std::string> rej;
    for (auto [bit, name] : {std::pair{SpfResultSet::kFail, "fail"}, {SpfResultSet::kSoftFail, "softfail"},
                             {SpfResultSet::kPermError, "permerror"}, {SpfResultSet::kTempError, "temperror"}})
      if (v.spf_reject & unsigned(bit)) rej.push_back(name);
    auto onoff = [](bool b) { return b ? "on" : "off"; };
    out += fmt::format("verify: {}\n", onoff(v.enabled));
    if (v.enabled)
      out += fmt::format("verify.authserv_id: {}\nverify.spf: {} (reject: {})\nverify.dkim: {} (max {} signatures, l= {})\n"
                         "verify.dmarc: {} ({})\nverify.arc: {}\n",
                         v.authserv_id, onoff(v.spf), rej.empty() ? std::string("none") : fmt::format("{}", fmt::join(rej, ", ")),
                         onoff(v.dkim), v.dkim_max_signatures, v.dkim_honour_length ? "honoured" : "ignored",
                         onoff(v.dmarc), v.dmarc_enforce ? "enforced" : "recorded only", onoff(v.arc));
    out += fmt::format("verify.junk_header: {}\n", v.junk_header.empty() ? std::string("(none)") : v.junk_header);
  }
  for (const Milter& m : c.milters) {
    std::vector<std::string> stages;
    for (unsigned i = 0; i < std::size(kMilterStageNames); ++i)
      if (m.stages & (1u << i)) stages.push_back(kMilterStageNames[i]);
    stages.push_back("end-of-message");
    out += fmt::format("milter {}: default_action={} timeouts connect={} command={} message={} stages={} services={}\n", m.name,
                       m.default_action == MilterDefault::kAccept ? "accept" : "tempfail",
                       formatDurationMs(m.connect_timeout_ms), formatDurationMs(m.command_timeout_ms),
                       formatDurationMs(m.message_timeout_ms), fmt::join(stages, ","),
                       m.services.empty() ? std::string("all") : fmt::format("{}", fmt::join(m.services, ",")));
  }
  std::vector<std::string> dns_servers;
  for (const auto& e : c.dns.servers) dns_servers.push_back(e.toString());
  out += fmt::format("dns.servers: {}\ndns.timeout: {}\ndns.cache_size: {}\n",
                     dns_servers.empty() ? std::string("system (resolv.conf)") : fmt::format("{}", fmt::join(dns_servers, ", ")),
                     formatDurationMs(c.dns.timeout_ms), c.dns.cache_size);
  out += fmt::format("proxy_protocol.header_timeout: {}\n", formatDurationMs(c.proxy.header_timeout_ms));
  const Protect& p = c.protect;
  std::vector<std::string> allow;
  for (const auto& n : p.allow_networks) allow.push_back(n.toString());
  out += fmt::format("protect.allow_networks: {}\nprotect.window: {}\n", fmt::join(allow, ", "), formatDurationMs(p.window_ms));
  out += fmt::format("protect.auth_failures: {}\nprotect.relay_attempts: {}\nprotect.unknown_recipients: {}\n",
                     p.auth_failures.threshold, p.relay_attempts.threshold, p.unknown_recipients.threshold);
  out += fmt::format("protect.protocol_errors: {}\nprotect.early_talkers: {}\n", p.protocol_errors.threshold,
                     p.early_talkers.threshold);
  out += fmt::format("protect.ban_time: {}\nprotect.max_ban_time: {}\nprotect.ipv6_prefix: {}\n",
                     formatDurationMs(p.ban_time_ms), formatDurationMs(p.max_ban_time_ms), p.ipv6_prefix);
  out += fmt::format("protect.max_connections_per_client: {}\nprotect.max_connection_rate: {}/min\n",
                     p.max_connections_per_client, p.max_connection_rate);
  out += fmt::format("protect.max_messages_per_user: {}/h\nprotect.max_recipients_per_user: {}/h\n"
                     "protect.max_auth_attempts: {}\n",
                     p.max_messages_per_user, p.max_recipients_per_user, p.max_auth_attempts);
  for (const auto& z : p.dnsbl.zones)
    out += fmt::format("protect.dnsbl.zone: {} action={} score={}\n", z.name, z.reject ? "reject" : "score", z.score);
  if (!p.dnsbl.zones.empty())
    out += fmt::format("protect.dnsbl.threshold: {}\nprotect.dnsbl.resolver: {}\nprotect.dnsbl.timeout: {}\n",
                       p.dnsbl.threshold, p.dnsbl.resolver ? p.dnsbl.resolver->toString() : "shared ([dns] servers)",
                       formatDurationMs(p.dnsbl.timeout_ms));
  const Greylist& g = p.greylist;
  out += fmt::format("protect.greylist: {}\n", g.enabled ? "on" : "off");
  if (g.enabled)
    out += fmt::format("protect.greylist.delay: {}\nprotect.greylist.retry_window: {}\nprotect.greylist.pass_lifetime: {}\n"
                       "protect.greylist.networks: IPv4 /{} IPv6 /{}\nprotect.greylist.auto_allow: {}\n"
                       "protect.greylist.max_entries: {}\n",
                       formatDurationMs(g.delay_ms), formatDurationMs(g.retry_window_ms),
                       formatDurationMs(g.pass_lifetime_ms), g.ipv4_prefix, g.ipv6_prefix, g.auto_allow, g.max_entries);
  out += fmt::format("tls.ciphers: {}\ntls.ciphersuites: {}\n", c.tls.ciphers.empty() ? "intermediate (built in)" : c.tls.ciphers,
                     c.tls.ciphersuites.empty() ? "OpenSSL defaults" : c.tls.ciphersuites);
  for (const auto& l : c.listeners) {
    std::vector<std::string> nets;
    for (const auto& n : l.trusted_networks) nets.push_back(n.toString());
    out += fmt::format("\nlistener {} ({})\n  service: {}{}\n  address: {}\n  tls: {}\n  auth: {}\n  proxy_protocol: {}\n",
                       l.name, l.pos.toString(), l.name,
                       l.service_as_written != l.name ? fmt::format(" (written as '{}')", l.service_as_written) : "",
                       l.address.toString(),
                       l.service->implicit_tls ? "implicit"
                       : (c.tls.configured && l.service->offers_starttls) ? "starttls" : "none",
                       l.service->service == Service::kMetrics ? "none (HTTP: /metrics /healthz /readyz)"
                       : l.service->auth_required ? "required before MAIL" : "offered under TLS",
                       proxyModeName(l.proxy));
    if (l.proxy != ProxyMode::kOff)
      out += fmt::format("  trusted_networks: {}{}\n  header_timeout: {}\n", fmt::join(nets, ", "),
                         l.trusted_networks_overridden ? " (listener)" : " (global)",
                         formatDurationMs(c.proxy.header_timeout_ms));
  }
  return out;
}

}  // namespace postern::config
