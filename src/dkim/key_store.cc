// Finding and loading DKIM keys (layouts in key_store.h), and signing at acceptance.
#include "dkim/key_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "dkim/canon.h"
#include "log/log.h"
#include "util/file_source.h"
#include "util/fs.h"
#include "util/strings.h"

namespace postern::dkim {
namespace {

namespace fs = std::filesystem;

struct Found {
  std::string domain, selector, path;  // d=, s=, the key file
  std::string signs_for;               // the From: domain it signs (SigningTable); empty: `domain`
  const std::string& signer() const { return signs_for.empty() ? domain : signs_for; }
};

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string> sortedEntries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool isDir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// <domain>/<selector>.key, else <domain>/<selector>.private.
void scanDomainFolders(const std::string& dir, std::vector<Found>& out) {
  for (const auto& name : sortedEntries(dir)) {
    std::string sub = dir + "/" + name;
    if (name.find('.') == std::string::npos || !validDnsName(name) || !isDir(sub)) continue;
    for (std::string_view ext : {".key", ".private"}) {
      bool any = false;
      for (const auto& file : sortedEntries(sub)) {
        if (!endsWith(file, ext) || file.size() == ext.size()) continue;
        out.push_back(Found{toLower(name), file.substr(0, file.size() - ext.size()), sub + "/" + file, {}});
        any = true;
      }
      if (any) break;
    }
  }
}

// rspamd names: rsa-<bits>-<selector>-<domain>.private.txt, ed25519-<selector>-<domain>.private.txt.
// A selector containing '-' cannot be told from the domain: the first '-' is taken.
void scanRspamd(const std::string& dir, std::vector<Found>& out) {
  constexpr std::string_view kSuffix = ".private.txt";
  for (const auto& name : sortedEntries(dir)) {
    if (!endsWith(name, kSuffix)) continue;
    std::string_view rest(name);
    rest.remove_suffix(kSuffix.size());
    if (rest.substr(0, 4) == "rsa-") {
      rest.remove_prefix(4);
      size_t dash = rest.find('-');
      if (dash == std::string_view::npos || !parseDecimal(rest.substr(0, dash), 65536)) continue;
      rest.remove_prefix(dash + 1);
    } else if (rest.substr(0, 8) == "ed25519-") {
      rest.remove_prefix(8);
    } else {
      continue;
    }
    size_t dash = rest.find('-');
    if (dash == std::string_view::npos || dash == 0) continue;
    out.push_back(Found{toLower(rest.substr(dash + 1)), std::string(rest.substr(0, dash)), dir + "/" + name, {}});
  }
}

// opendkim's KeyTable ("name domain:selector:path") and SigningTable ("*@domain name" or
// "domain name"). Paths are those inside the container (/etc/opendkim/keys/...): a path
// that does not exist here is looked up as keys/<domain>/<file> beside the tables.
void scanOpendkimTables(const std::string& dir, std::vector<Found>& out, std::vector<std::string>& notes) {
  Result<std::string> kt = readRegularFile(dir + "/KeyTable");
  if (!kt) return;
  std::map<std::string, Found> by_name;
  for (std::string_view line : split(kt.value(), '\n')) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string_view rest = line;
    std::string_view name = takeWord(rest);
    std::vector<std::string_view> f = split(trim(rest), ':');
    if (f.size() < 3) {
      notes.push_back(fmt::format("{}/KeyTable: line '{}' is not 'name domain:selector:path'; ignored", dir, line));
      continue;
    }
    std::string path(f[2]);
    for (size_t i = 3; i < f.size(); ++i) {
      path += ':';
      path.append(f[i]);
    }
    if (!fs::exists(path)) {
      std::string base = path.substr(path.rfind('/') + 1);
      path = dir + "/keys/" + std::string(f[0]) + "/" + base;
    }
    by_name[std::string(name)] = Found{toLower(f[0]), std::string(f[1]), path, {}};
  }
  Result<std::string> st = readRegularFile(dir + "/SigningTable");
  if (!st) {
    for (auto& [n, found] : by_name) out.push_back(found);
    return;
  }
  for (std::string_view line : split(st.value(), '\n')) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string_view rest = line;
    std::string_view pattern = takeWord(rest);
    std::string_view name = takeWord(rest);
    if (pattern.substr(0, 2) == "*@") pattern.remove_prefix(2);
    auto it = by_name.find(std::string(name));
    if (it == by_name.end() || !validDnsName(pattern)) {
      notes.push_back(
          fmt::format("{}/SigningTable: line '{}' is not '*@domain keyname' with a KeyTable name; ignored", dir, line));
      continue;
    }
    Found f = it->second;
    f.signs_for = toLower(pattern);  // d= stays the KeyTable's domain, as opendkim signs
    out.push_back(f);
  }
}

// The From: domain of a header section splitMessage refused: its From: field alone, so that
// a message that cannot be signed is reported only when its domain has a key.
std::optional<std::string> lenientFromDomain(std::string_view message) {
  std::string_view header = message.substr(0, message.find("\r\n\r\n"));
  size_t pos = 0;
  while (pos < header.size()) {
    size_t eol = std::min(header.find("\r\n", pos), header.size());
    if (istartsWith(header.substr(pos, eol - pos), "from:")) {
      while (eol + 2 < header.size() && (header[eol + 2] == ' ' || header[eol + 2] == '\t'))
        eol = std::min(header.find("\r\n", eol + 2), header.size());
      const std::string field = std::string(header.substr(pos, eol - pos)) + "\r\n\r\n";
      Result<MessageParts> alone = splitMessage(field);
      return alone ? fromDomain(alone.value()) : std::nullopt;
    }
    pos = eol + 2;
  }
  return std::nullopt;
}

}  // namespace

bool validDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos)
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  return true;
}

const SigningKey* KeySet::find(std::string_view domain) const {
  std::string d = toLower(domain);
  for (;;) {
    auto it = keys_.find(d);
    if (it != keys_.end()) return &it->second;
    size_t dot = d.find('.');
    if (dot == std::string::npos) return nullptr;
    d.erase(0, dot + 1);
    if (d.find('.') == std::string::npos) return nullptr;  // never a top-level domain's key
  }
}

ScanResult scanKeyFolder(const std::string& dir) {
  ScanResult r;
  std::vector<Found> found;
  scanOpendkimTables(dir, found, r.notes);
  std::set<std::string> from_tables;
  for (const auto& f : found) from_tables.insert(f.signer());
  std::vector<Found> plain;
  scanDomainFolders(dir, plain);
  if (from_tables.empty()) scanDomainFolders(dir + "/keys", plain);  // the tables name those
  scanRspamd(dir, plain);
  for (auto& f : plain)
    if (!from_tables.count(f.signer())) found.push_back(std::move(f));

  // One selector per domain: "mail" if there is one, else the first found.
  std::map<std::string, std::vector<Found>> by_domain;
  for (auto& f : found) by_domain[f.signer()].push_back(std::move(f));
  for (auto& [domain, list] : by_domain) {
    size_t pick = 0;
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i].selector == kDefaultSelector) {
        pick = i;
        break;
      }
    for (size_t i = 0; i < list.size(); ++i)
      if (i != pick)
        r.notes.push_back(fmt::format("{}: not used; {} signs with selector '{}' ({})", list[i].path, domain,
                                      list[pick].selector, list[pick].path));
    const Found& f = list[pick];
    Result<std::string> text = readRegularFile(f.path);
    if (!text) {
      r.problems.push_back({f.path, text.status().message()});
      continue;
    }
    Result<SigningKey> key = parsePrivateKey(text.value());
    if (!key) {
      r.problems.push_back({f.path, key.status().message()});
      continue;
    }
    struct stat st;
    if (::stat(f.path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      r.notes.push_back(fmt::format("{}: a private key readable by group or others (mode {:o}); chmod 600 it", f.path,
                                    st.st_mode & 0777));
    SigningKey k = std::move(key.value());
    k.domain = f.domain;
    k.selector = f.selector;
    k.path = f.path;
    r.keys.add(domain, std::move(k));
  }
  return r;
}

void KeyStore::load(std::string_view trigger) {
  ScanResult r = scanKeyFolder(dir_);
  auto next = std::make_shared<KeySet>(r.keys);
  std::shared_ptr<const KeySet> previous = current();
  for (const auto& [domain, k] : next->all())
    log::info("dkim.key_loaded")
        .kv("trigger", trigger)
        .kv("domain", domain)
        .kv("selector", k.selector)
        .kv("type", keyTypeName(k.type))
        .kv("bits", uint64_t(k.bits))
        .kv("file", k.path);
  for (const auto& p : r.problems) {
    auto ev = log::error("dkim.key_failed");
    ev.kv("trigger", trigger).kv("file", p.path).kv("reason", p.reason);
    // Keep signing with the key that worked before rather than stop signing.
    bool kept = false;
    for (const auto& [domain, k] : previous->all())
      if (k.path == p.path && !next->all().count(domain)) {
        next->add(domain, k);
        kept = true;
      }
    ev.kv("status", kept ? "kept_previous" : "unsigned");
    if (!kept) ev.kv("fix", "mail from this key's domain is accepted unsigned until the key loads");
  }
  for (const auto& n : r.notes) log::warn("dkim.note").kv("trigger", trigger).kv("note", n);
  log::info("dkim.keys").kv("trigger", trigger).kv("folder", dir_).kv("domains", uint64_t(next->size()));
  std::lock_guard lock(mu_);
  keys_ = std::move(next);
}

SignOutcome signWithKeyFor(const KeySet& keys, std::string_view message, int64_t now) {
  SignOutcome out;
  if (keys.empty()) return out;
  Result<MessageParts> parts = splitMessage(message);
  std::optional<std::string> domain = parts ? fromDomain(parts.value()) : lenientFromDomain(message);
  const SigningKey* key = domain ? keys.find(*domain) : nullptr;
  if (!key) return out;  // not ours to sign, whatever its shape
  if (!parts) {
    out.kind = SignOutcome::Kind::kFailed;
    out.domain = key->domain;
    out.selector = key->selector;
    out.reason = parts.status().message();
    return out;
  }
  out.domain = key->domain;
  out.selector = key->selector;
  Result<std::string> field = signMessage(message, *key, now);
  if (!field) {
    out.kind = SignOutcome::Kind::kFailed;
    out.reason = field.status().message();
    return out;
  }
  out.kind = SignOutcome::Kind::kSigned;
  out.field = std::move(field.value());
  return out;
}

Result<std::string> writeNewKey(const std::string& dir, const std::string& domain, const std::string& selector,
                                KeyType type, unsigned bits) {
  if (!validDnsName(domain)) return Status::invalid(fmt::format("'{}' is not a domain name", domain));
  if (!validDnsName(selector))
    return Status::invalid(fmt::format("'{}' is not a selector (letters, digits, '-', '.')", selector));
  std::string lower = toLower(domain);
  std::string folder = dir + "/" + lower;
  std::string path = folder + "/" + selector + ".key";
  if (::access(path.c_str(), F_OK) == 0)
    return Status::exists(fmt::format("{} exists; refusing to overwrite a key (remove it first to replace it)", path));
  Result<SigningKey> key = generateKey(type, bits);
  if (!key) return key.status();
  Result<std::string> pem = privateKeyPem(key.value());
  if (!pem) return pem.status();
  Result<std::string> txt = dnsTxtValue(key.value());
  if (!txt) return txt.status();
  if (Status s = makeDirs(folder, 0700); !s) return s;
  ::chmod(folder.c_str(), 0700);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) return Status::exists(fmt::format("{} exists; refusing to overwrite a key", path));
    return Status::fromErrno(err, fmt::format("{}: cannot create: {}", path, std::strerror(err)));
  }
  Status s = writeAll(fd, pem.value().data(), pem.value().size());
  if (s && ::fsync(fd) != 0) s = Status::fromErrno(errno, fmt::format("{}: fsync: {}", path, std::strerror(errno)));
  ::close(fd);
  if (!s) {
    ::unlink(path.c_str());
    return s;
  }
  fsyncDir(folder);
  return dnsRecordLine(lower, selector, txt.value());
}

}  // namespace postern::dkim
