// DKIM signing, RFC 6376 (§3.5 tags, §3.7 hashes, §5 signer actions): rsa-sha256 and
// RFC 8463 ed25519-sha256, relaxed/relaxed, From oversigned. Keys are OpenSSL EVP_PKEYs;
// RFC 8301 §3.2 sets the RSA floor at 1024 bits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

struct evp_pkey_st;

namespace postern::dkim {

inline constexpr unsigned kMinRsaBits = 1024;  // RFC 8301 §3.2
inline constexpr unsigned kMaxRsaBits = 4096;  // larger keys do not fit most DNS set-ups
inline constexpr unsigned kDefaultRsaBits = 2048;
inline constexpr size_t kFoldColumn = 78;     // RFC 5322 §2.1.1 recommended line length
inline constexpr size_t kTxtStringMax = 255;  // RFC 1035 §3.3: one character-string

enum class KeyType { kRsa, kEd25519 };
std::string_view keyTypeName(KeyType t);    // "rsa" | "ed25519" (the DNS k= value)
std::string_view algorithmName(KeyType t);  // "rsa-sha256" | "ed25519-sha256" (the a= value)

// A private key and where it signs. Immutable once loaded; shared between sessions.
struct SigningKey {
  std::string domain;    // d=
  std::string selector;  // s=
  std::string path;      // where it was read from (for logs)
  KeyType type = KeyType::kRsa;
  unsigned bits = 0;  // RSA modulus size; 256 for Ed25519
  std::shared_ptr<evp_pkey_st> pkey;
};

// A private key from file contents: PEM (PKCS#1 or PKCS#8, RSA or Ed25519), or the bare
// base64 Ed25519 key that rspamd writes (32-byte seed, or seed followed by public key).
// Errors say why in words an operator can act on (too short, not a key, ...).
Result<SigningKey> parsePrivateKey(std::string_view contents);

// A new key: RSA of `bits` (kMinRsaBits..kMaxRsaBits) or Ed25519 (`bits` ignored).
Result<SigningKey> generateKey(KeyType type, unsigned bits);
// The key as PKCS#8 PEM, for writing to <keys>/<domain>/<selector>.key.
Result<std::string> privateKeyPem(const SigningKey& key);
// The DNS TXT value, "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>" (RFC 6376 §3.6.1),
// or for Ed25519 p= the raw 32-byte public key (RFC 8463 §4.2).
Result<std::string> dnsTxtValue(const SigningKey& key);
// The zone-file line: `<selector>._domainkey.<domain>. IN TXT "..." "..."`, the value cut
// into character-strings of at most kTxtStringMax bytes.
std::string dnsRecordLine(const std::string& domain, const std::string& selector, const std::string& txt);

// The DKIM-Signature field (folded at kFoldColumn, ending in CRLF) for `message` (CRLF
// lines, header and body) signed with `key` at Unix time `now`.
Result<std::string> signMessage(std::string_view message, const SigningKey& key, int64_t now);

}  // namespace postern::dkim
