// Password hashes as Dovecot writes them after a `{SCHEME}` prefix (doveadm pw, Dovecot
// "Password Schemes"), which is what docker-mailserver stores in postfix-accounts.cf:
//   SHA512-CRYPT  $6$[rounds=N$]salt$86 chars         (glibc/libxcrypt sha512crypt)
//   SHA256-CRYPT  $5$[rounds=N$]salt$43 chars         (glibc/libxcrypt sha256crypt)
//   BLF-CRYPT     $2y$NN$53 chars  ($2a$, $2b$ too)  (OpenBSD bcrypt)
//   ARGON2I       $argon2i$v=19$m=M,t=T,p=P$salt$hash  (PHC string format, RFC 9106)
//   ARGON2ID      $argon2id$v=19$m=M,t=T,p=P$salt$hash
// Hashing is done by libxcrypt and libsodium; this file only dispatches and checks shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern::directory {

enum class Scheme : uint8_t { kSha512Crypt, kSha256Crypt, kBlfCrypt, kArgon2i, kArgon2id };

// Longest password verifyPassword/hashPassword accept: libxcrypt's own limit
// (CRYPT_MAX_PASSPHRASE_SIZE 512, counting the NUL). It also bounds the CPU a client can
// buy, since SHA-crypt cost grows with the password length.
inline constexpr size_t kMaxPasswordLength = 511;
// Random bytes fed to crypt_gensalt for a new SHA512-CRYPT salt (gives 16 salt characters).
inline constexpr size_t kSaltRandomBytes = 16;
// The scheme hashPassword uses (the docker-mailserver default).
inline constexpr Scheme kDefaultScheme = Scheme::kSha512Crypt;
// Rounds for new SHA512-CRYPT hashes. libxcrypt's default (5,000, what docker-mailserver's
// doveadm writes) costs an attacker with a leaked accounts file little; 100,000 is about
// 40 ms per check here and is still read by Dovecot and every crypt(3). Existing hashes
// keep their rounds; a login is checked once and then served by the cache (auth_cache.h).
inline constexpr unsigned long kNewHashRounds = 100'000;

// "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2I", "ARGON2ID".
std::string_view schemeName(Scheme scheme);
// The scheme named `name` (case-insensitive, without braces), or nullopt.
std::optional<Scheme> schemeFromName(std::string_view name);
// "SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2I, ARGON2ID", for error messages.
std::string_view supportedSchemeList();

// Checks that `hash` (without the {SCHEME} prefix) has the shape `scheme` produces: right
// prefix, parameters, alphabet and length. A truncated or foreign hash is invalid; the
// message says what is wrong (no file/line: callers add them). Cheap; does not hash.
Status checkHash(Scheme scheme, std::string_view hash);

// True if `password` matches `hash` under `scheme`. Slow on purpose (crypt / argon2):
// callers run it off the event loop. Thread-safe. The computed hash is compared in
// constant time. False for a hash that fails checkHash (so a stray DES or MD5 hash is
// never used), for an empty password, a password longer than kMaxPasswordLength or one
// containing a NUL byte (crypt would silently cut it there).
bool verifyPassword(Scheme scheme, std::string_view hash, std::string_view password);

// A new "{SHA512-CRYPT}$6$rounds=100000$<16 random salt chars>$..." (kNewHashRounds, salt
// from OpenSSL RAND_bytes). Error for an empty password, one with a NUL byte or one longer
// than kMaxPasswordLength, or if the random source or libxcrypt fails.
Result<std::string> hashPassword(std::string_view password);

// Runs the same check as for an account with a new hash and returns false: AUTH for an
// unknown user takes as long as for a known one, so timing does not tell which addresses
// have accounts. The hash is made once, on first use. Thread-safe.
bool verifyAgainstDummy(std::string_view password);

}  // namespace postern::directory
