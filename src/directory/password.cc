// Password verification and hashing: Dovecot password schemes on top of libxcrypt
// (crypt_rn, crypt_gensalt_rn) and libsodium (argon2 PHC strings). See password.h.
#include "directory/password.h"

#include <crypt.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <array>
#include <initializer_list>
#include <memory>

#include "util/strings.h"

namespace postern::directory {
namespace {

struct SchemeInfo {
  Scheme scheme;
  std::string_view name;
};

constexpr std::array<SchemeInfo, 5> kSchemes = {{
    {Scheme::kSha512Crypt, "SHA512-CRYPT"},
    {Scheme::kSha256Crypt, "SHA256-CRYPT"},
    {Scheme::kBlfCrypt, "BLF-CRYPT"},
    {Scheme::kArgon2i, "ARGON2I"},
    {Scheme::kArgon2id, "ARGON2ID"},
}};

// Hash shapes (crypt(5) in libxcrypt; the PHC string format for argon2).
constexpr size_t kSha512Digest = 86;   // base64-ish characters after the salt
constexpr size_t kSha256Digest = 43;
constexpr size_t kShaMaxSalt = 16;     // longer salts are silently cut by crypt
constexpr size_t kShaMaxRoundsDigits = 9;
constexpr size_t kBcryptBody = 53;     // 22 salt + 31 hash characters
constexpr unsigned kBcryptMinCost = 4;
constexpr unsigned kBcryptMaxCost = 31;
constexpr size_t kArgon2MaxNumberDigits = 10;
constexpr size_t kArgon2MinSaltBytes = 8;    // libsodium / reference argon2 minimums
constexpr size_t kArgon2MinTagBytes = 16;

static_assert(kMaxPasswordLength < CRYPT_MAX_PASSPHRASE_SIZE, "libxcrypt refuses longer passphrases");

bool isCryptChar(char c) {
  return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
         (c >= 'a' && c <= 'z');
}

bool isBase64Char(char c) {
  return c == '+' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
         (c >= 'a' && c <= 'z');
}

// Bytes encoded by `len` characters of unpadded base64, or 0 if no such encoding exists.
size_t base64Bytes(size_t len) { return len % 4 == 1 ? 0 : len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1); }

bool allOf(std::string_view s, bool (*pred)(char)) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool isDigits(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "$6$[rounds=N$]salt$digest" (prefix "$6$" or "$5$").
Status checkShaCrypt(std::string_view hash, std::string_view prefix, size_t digest_len) {
  std::string_view s = hash;
  if (!consume(s, prefix)) return Status::invalid("hash does not start with " + std::string(prefix));
  if (consume(s, "rounds=")) {
    size_t end = s.find('$');
    if (end == std::string_view::npos || !isDigits(s.substr(0, end), kShaMaxRoundsDigits))
      return Status::invalid("malformed rounds= parameter");
    s.remove_prefix(end + 1);
  }
  size_t end = s.find('$');
  if (end == std::string_view::npos) return Status::invalid("hash has no '$' after the salt (truncated?)");
  std::string_view salt = s.substr(0, end);
  std::string_view digest = s.substr(end + 1);
  if (salt.size() > kShaMaxSalt || !allOf(salt, isCryptChar))
    return Status::invalid("malformed salt (at most 16 characters of [./0-9A-Za-z])");
  if (digest.size() != digest_len || !allOf(digest, isCryptChar))
    return Status::invalid("hash part must be " + std::to_string(digest_len) + " characters of [./0-9A-Za-z], found " +
                           std::to_string(digest.size()) + (digest.size() < digest_len ? " (truncated?)" : ""));
  return Status::ok();
}

// "$2y$NN$<53 chars>" ($2a$ and $2b$ too; $2x$ is the buggy legacy variant: refused).
Status checkBcrypt(std::string_view hash) {
  std::string_view s = hash;
  if (!(consume(s, "$2y$") || consume(s, "$2b$") || consume(s, "$2a$")))
    return Status::invalid("hash does not start with $2y$, $2b$ or $2a$");
  if (s.size() < 3 || !isDigits(s.substr(0, 2), 2) || s[2] != '$')
    return Status::invalid("malformed bcrypt cost (expected two digits and '$')");
  unsigned cost = static_cast<unsigned>((s[0] - '0') * 10 + (s[1] - '0'));
  if (cost < kBcryptMinCost || cost > kBcryptMaxCost) return Status::invalid("bcrypt cost must be 04..31");
  s.remove_prefix(3);
  if (s.size() != kBcryptBody || !allOf(s, isCryptChar))
    return Status::invalid("bcrypt salt and hash must be 53 characters of [./0-9A-Za-z], found " +
                           std::to_string(s.size()) + (s.size() < kBcryptBody ? " (truncated?)" : ""));
  return Status::ok();
}

// "$argon2id$v=19$m=65536,t=3,p=1$<salt b64>$<hash b64>" (v= is optional in the format).
Status checkArgon2(std::string_view hash, std::string_view prefix) {
  std::string_view s = hash;
  if (!consume(s, prefix)) return Status::invalid("hash does not start with " + std::string(prefix));
  if (consume(s, "v=")) {
    size_t end = s.find('$');
    if (end == std::string_view::npos || !isDigits(s.substr(0, end), kArgon2MaxNumberDigits))
      return Status::invalid("malformed v= parameter");
    s.remove_prefix(end + 1);
  }
  for (std::string_view key : {"m=", "t=", "p="}) {
    if (!consume(s, key)) return Status::invalid("malformed parameters (expected m=M,t=T,p=P)");
    size_t end = s.find_first_of(",$");
    if (end == std::string_view::npos || !isDigits(s.substr(0, end), kArgon2MaxNumberDigits))
      return Status::invalid("malformed parameters (expected m=M,t=T,p=P)");
    bool last = key == "p=";
    if (s[end] != (last ? '$' : ',')) return Status::invalid("malformed parameters (expected m=M,t=T,p=P)");
    s.remove_prefix(end + 1);
  }
  size_t end = s.find('$');
  if (end == std::string_view::npos) return Status::invalid("hash has no '$' after the salt (truncated?)");
  std::string_view salt = s.substr(0, end);
  std::string_view digest = s.substr(end + 1);
  if (!allOf(salt, isBase64Char) || base64Bytes(salt.size()) < kArgon2MinSaltBytes)
    return Status::invalid("malformed salt (at least 8 bytes, base64 without padding)");
  if (!allOf(digest, isBase64Char) || base64Bytes(digest.size()) < kArgon2MinTagBytes)
    return Status::invalid("malformed hash part (at least 16 bytes, base64 without padding; truncated?)");
  return Status::ok();
}

bool passwordAcceptable(std::string_view password) {
  return !password.empty() && password.size() <= kMaxPasswordLength &&
         password.find('\0') == std::string_view::npos;
}

// crypt_rn over a heap crypt_data (32 KiB: too big for coroutine or thread stacks).
bool verifyCrypt(std::string_view hash, std::string_view password) {
  auto data = std::make_unique<crypt_data>();   // value-initialised: zeroed, as crypt_rn requires
  std::string phrase(password);
  std::string setting(hash);
  const char* out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  bool match = false;
  if (out != nullptr && out[0] != '*') {
    std::string_view computed(out);
    // Lengths are public (fixed per scheme); the bytes are compared in constant time.
    match = computed.size() == hash.size() && sodium_memcmp(computed.data(), hash.data(), hash.size()) == 0;
  }
  sodium_memzero(phrase.data(), phrase.size());
  sodium_memzero(data.get(), sizeof(crypt_data));
  return match;
}

// libsodium's verifiers recompute the tag and compare it in constant time themselves.
bool verifyArgon2(Scheme scheme, std::string_view hash, std::string_view password) {
  if (sodium_init() < 0) return false;
  std::string encoded(hash);
  int rc = scheme == Scheme::kArgon2id
               ? crypto_pwhash_argon2id_str_verify(encoded.c_str(), password.data(), password.size())
               : crypto_pwhash_argon2i_str_verify(encoded.c_str(), password.data(), password.size());
  return rc == 0;
}

}  // namespace

std::string_view schemeName(Scheme scheme) {
  for (const auto& info : kSchemes) {
    if (info.scheme == scheme) return info.name;
  }
  return "UNKNOWN";
}

std::optional<Scheme> schemeFromName(std::string_view name) {
  for (const auto& info : kSchemes) {
    if (iequals(info.name, name)) return info.scheme;
  }
  return std::nullopt;
}

std::string_view supportedSchemeList() { return "SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2I, ARGON2ID"; }

Status checkHash(Scheme scheme, std::string_view hash) {
  switch (scheme) {
    case Scheme::kSha512Crypt:
      return checkShaCrypt(hash, "$6$", kSha512Digest);
    case Scheme::kSha256Crypt:
      return checkShaCrypt(hash, "$5$", kSha256Digest);
    case Scheme::kBlfCrypt:
      return checkBcrypt(hash);
    case Scheme::kArgon2i:
      return checkArgon2(hash, "$argon2i$");
    case Scheme::kArgon2id:
      return checkArgon2(hash, "$argon2id$");
  }
  return Status::invalid("unknown scheme");
}

bool verifyPassword(Scheme scheme, std::string_view hash, std::string_view password) {
  if (!passwordAcceptable(password) || !checkHash(scheme, hash).isOk()) return false;
  switch (scheme) {
    case Scheme::kSha512Crypt:
    case Scheme::kSha256Crypt:
    case Scheme::kBlfCrypt:
      return verifyCrypt(hash, password);
    case Scheme::kArgon2i:
    case Scheme::kArgon2id:
      return verifyArgon2(scheme, hash, password);
  }
  return false;
}

Result<std::string> hashPassword(std::string_view password) {
  if (password.empty()) return Status::invalid("the password is empty");
  if (password.size() > kMaxPasswordLength)
    return Status::invalid("the password is longer than " + std::to_string(kMaxPasswordLength) + " bytes");
  if (password.find('\0') != std::string_view::npos) return Status::invalid("the password contains a NUL byte");

  std::array<unsigned char, kSaltRandomBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1)
    return Status::io("cannot get random bytes for the salt (OpenSSL RAND_bytes failed)");
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
  if (crypt_gensalt_rn("$6$", kNewHashRounds, reinterpret_cast<const char*>(random.data()), static_cast<int>(random.size()),
                       setting.data(), static_cast<int>(setting.size())) == nullptr)
    return Status::io("crypt_gensalt_rn failed for SHA512-CRYPT");

  auto data = std::make_unique<crypt_data>();
  std::string phrase(password);
  const char* out = crypt_rn(phrase.c_str(), setting.data(), data.get(), sizeof(crypt_data));
  std::string result;
  if (out != nullptr && out[0] != '*') result = "{" + std::string(schemeName(kDefaultScheme)) + "}" + out;
  sodium_memzero(phrase.data(), phrase.size());
  sodium_memzero(data.get(), sizeof(crypt_data));
  if (result.empty()) return Status::io("crypt_rn failed for SHA512-CRYPT");
  // Never hand out something verifyPassword would refuse.
  if (!checkHash(kDefaultScheme, std::string_view(result).substr(schemeName(kDefaultScheme).size() + 2)).isOk())
    return Status::io("crypt_rn produced an unexpected SHA512-CRYPT hash");
  return result;
}

bool verifyAgainstDummy(std::string_view password) {
  static const std::string dummy = [] {
    auto h = hashPassword("postern-dummy-password-for-unknown-users");
    // The prefix "{SHA512-CRYPT}" is cut: verifyPassword takes the bare hash.
    return h ? h->substr(schemeName(kDefaultScheme).size() + 2) : std::string();
  }();
  (void)verifyPassword(kDefaultScheme, dummy, password);
  return false;
}

}  // namespace postern::directory
