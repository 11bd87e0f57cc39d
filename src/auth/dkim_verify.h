// DKIM verification, RFC 6376 §6: DKIM-Signature tag parsing (§3.2, §3.5), key records
// (§3.6.1), body and header hashes with the canonicalizations of dkim/canon.h, signatures
// rsa-sha256 and ed25519-sha256 (RFC 8463). rsa-sha1 is not accepted any more (RFC 8301 §3.1:
// verifiers MUST NOT consider it valid): such signatures are reported as "policy"/"fail"
// with the reason. RSA keys under 1024 bits likewise (RFC 8301 §3.2).
// Parsers are pure (tests/unit/dkim_verify_test.cc; fuzz: fuzz/dkim_signature.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dns.h"
#include "net/asio.h"
#include "util/status.h"

namespace postern::auth {

inline constexpr size_t kDkimMaxTagListBytes = 16 * 1024;   // a DKIM-Signature or key record

enum class DkimAlgorithm : uint8_t { kRsaSha256, kRsaSha1, kEd25519Sha256 };

// A tag=value list (§3.2): tags in order, duplicates are an error.
Result<std::vector<std::pair<std::string, std::string>>> parseTagList(std::string_view text);

struct DkimSignature {
  DkimAlgorithm algorithm = DkimAlgorithm::kRsaSha256;
  std::string b;                         // signature, base64 with FWS removed
  std::string bh;                        // body hash, base64
  bool header_relaxed = false, body_relaxed = false;   // c=
  std::string domain;                    // d=, lower case
  std::string selector;                  // s=
  std::vector<std::string> signed_headers;   // h=
  std::string identity;                  // i= (default "@d")
  std::optional<uint64_t> length;        // l=
  std::optional<int64_t> timestamp;      // t=
  std::optional<int64_t> expiration;     // x=
};
// The value of a DKIM-Signature field (after "DKIM-Signature:"). Errors name the tag:
// "missing required tag bh=", "h= does not include From".
Result<DkimSignature> parseDkimSignature(std::string_view value);

struct DkimKey {
  std::string key_type = "rsa";          // k=
  std::vector<std::string> hashes;       // h= (empty: any)
  std::string public_key;                // p= decoded (DER SubjectPublicKeyInfo for rsa, 32 bytes raw for ed25519); empty: revoked
  bool testing = false;                  // t=y
  bool strict_identity = false;          // t=s
  std::vector<std::string> services;     // s=
};
Result<DkimKey> parseDkimKey(std::string_view txt);

enum class DkimResult : uint8_t { kNone, kPass, kFail, kNeutral, kPolicy, kTempError, kPermError };
const char* dkimResultName(DkimResult r);   // RFC 8601 §2.7.1 names

struct DkimVerdict {
  DkimResult result = DkimResult::kNone;
  std::string domain;        // d=
  std::string selector;      // s=
  std::string identity;      // i=
  std::string algorithm;     // "rsa-sha256", ...
  std::string b_prefix;      // first 8 characters of b= (RFC 6008 header.b)
  std::string reason;        // why not pass: "body hash mismatch", "key not found", ...
  bool testing = false;
};

struct DkimVerifyOptions {
  size_t max_signatures = 5;     // more are reported as kNone with reason "not checked (limit)"
  bool honour_length = true;     // l=: hash only that many body octets; false: the whole body
  int64_t now = 0;               // unix seconds, for x=
};

// Verifies every DKIM-Signature of `message` (CRLF lines, header + body), top first, up to
// max_signatures. Body hashing runs on `cpu` when given (large messages), else inline.
// No signature: an empty vector (reported as dkim=none).
net::awaitable<std::vector<DkimVerdict>> verifyDkim(Dns& dns, std::shared_ptr<const std::string> message,
                                                    DkimVerifyOptions options, asio::thread_pool* cpu = nullptr);

}  // namespace postern::auth
