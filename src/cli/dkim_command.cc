// `postern dkim keygen DOMAIN [--selector S] [--type rsa|ed25519] [--bits N]`: writes a new
// signing key into [dkim] keys and prints the DNS record that publishes it (stdout: the
// record alone, so that scripts can take it as it is; stderr: where the key went).
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "config/config.h"
#include "dkim/key_store.h"
#include "util/strings.h"

namespace postern::cli {

int runDkim(const Args& a) {
  if (a.positional.size() != 3 || a.positional[1] != "keygen") {
    std::fprintf(stderr, "usage: postern dkim keygen DOMAIN [--selector S] [--type rsa|ed25519] [--bits N]\n");
    return 2;
  }
  auto opt = [&](const char* name, std::string fallback) {
    auto it = a.dkim.find(name);
    return it == a.dkim.end() ? fallback : it->second;
  };
  std::string type_name = opt("type", "rsa");
  dkim::KeyType type;
  if (type_name == "rsa")
    type = dkim::KeyType::kRsa;
  else if (type_name == "ed25519")
    type = dkim::KeyType::kEd25519;
  else {
    std::fprintf(stderr, "postern: --type must be rsa or ed25519, not '%s'\n", type_name.c_str());
    return 2;
  }
  std::optional<uint64_t> bits = parseDecimal(opt("bits", std::to_string(dkim::kDefaultRsaBits)), dkim::kMaxRsaBits);
  if (!bits || *bits < dkim::kMinRsaBits) {
    std::fprintf(stderr, "postern: --bits must be a number from %u to %u (RFC 8301)\n", dkim::kMinRsaBits,
                 dkim::kMaxRsaBits);
    return 2;
  }
  if (type == dkim::KeyType::kEd25519 && a.dkim.count("bits")) {
    std::fprintf(stderr, "postern: --bits applies to RSA keys only (Ed25519 keys have one size)\n");
    return 2;
  }
  config::LoadResult r = config::load(a.config_path);
  for (const auto& d : r.diagnostics)
    if (d.severity == config::Diagnostic::Severity::kError) std::fprintf(stderr, "%s\n", d.toString().c_str());
  if (!r.config) return 1;
  const std::string domain = toLower(a.positional[2]);
  const std::string selector = opt("selector", std::string(dkim::kDefaultSelector));
  const bool new_folder = ::access(r.config->dkim.keys_dir.c_str(), F_OK) != 0;
  Result<std::string> record = dkim::writeNewKey(r.config->dkim.keys_dir, domain, selector, type, unsigned(*bits));
  if (!record) {
    std::fprintf(stderr, "postern: %s\n", record.status().message().c_str());
    return 1;
  }
  // The server reads keys after dropping root (on SIGHUP): the service user owns them, as
  // opendkim's user owns its keys.
  const passwd* pw =
      ::geteuid() == 0 && r.config->server.user != "root" ? ::getpwnam(r.config->server.user.c_str()) : nullptr;
  if (pw) {
    std::string folder = r.config->dkim.keys_dir + "/" + domain;
    if ((new_folder && ::chown(r.config->dkim.keys_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) ||
        ::chown(folder.c_str(), pw->pw_uid, pw->pw_gid) != 0 ||
        ::chown((folder + "/" + selector + ".key").c_str(), pw->pw_uid, pw->pw_gid) != 0)
      std::fprintf(stderr, "postern: warning: could not give the key to user %s\n", r.config->server.user.c_str());
  }
  std::fprintf(stderr, "postern: wrote %s/%s/%s.key (%s); publish this record, then reload the server (SIGHUP):\n",
               r.config->dkim.keys_dir.c_str(), domain.c_str(), selector.c_str(),
               type == dkim::KeyType::kRsa ? fmt::format("rsa {} bits", *bits).c_str() : "ed25519");
  std::printf("%s\n", record.value().c_str());
  return 0;
}

}  // namespace postern::cli
