// Traefik's ACME storage file (acme.json), read as it is so that the certificates Traefik
// renews reach Postern without an extraction script. Layouts:
//   Traefik v2 and v3: {"<resolver>": {"Account": {...}, "Certificates": [
//       {"domain": {"main": "...", "sans": [...]}, "certificate": "<base64 PEM chain>",
//        "key": "<base64 PEM key>", "Store": "default"}, ...]}, ...}
//   Traefik v1:        {"Account": {...}, "Certificates": [
//       {"Domain": {"Main": "...", "SANs": [...]}, "Certificate": "...", "Key": "..."}]}
// The parser is pure (text in, entries out); which entry serves is decided by the TLS layer
// from the certificates themselves (their names and expiry), never from the JSON's claims.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::tls {

struct AcmeEntry {
  std::string resolver;               // "" for the v1 layout
  std::string main;                   // domain.main as Traefik wrote it (for messages)
  std::vector<std::string> sans;
  std::string cert_pem;               // decoded from base64
  std::string key_pem;
  size_t index = 0;                   // position within its resolver's list (for messages)
};

struct AcmeFile {
  std::vector<AcmeEntry> entries;
  std::vector<std::string> resolvers;         // every resolver in the file, by name
  std::vector<std::string> problems;          // entries skipped, with why ("resolver le, entry 2: ...")
};

// Invalid JSON, or JSON that is neither layout, is an error; a single unusable entry (bad
// base64, missing field) is skipped and named in `problems`.
Result<AcmeFile> parseTraefikAcme(std::string_view json);

// RFC 4648 §4 base64 (the standard alphabet, '=' padding; whitespace ignored). False on any
// other character or a bad length.
bool decodeBase64(std::string_view in, std::string& out);

}  // namespace postern::tls
