// DKIM verification, RFC 6376 §6: DKIM-Signature tag parsing (§3.2, §3.5), key records
// (§3.6.1), body and header hashes with the canonicalizations of dkim/canon.h, signatures
// rsa-sha256 and ed25519-sha256 (RFC 8463). rsa-sha1 is not accepted any more (RFC 8301 §3.1:
// verifiers MUST NOT consider it valid): such signatures are reported as "policy"/"fail"
// with the reason. RSA keys under 1024 bits likewise (RFC 8301 §3.2). Parsers: dkim_tags.cc;
// verification: dkim_verify.cc (shared with ARC through dkim_crypto.h).
// Parsers are pure (tests/unit/dkim_verify_test.cc; fuzz: fuzz/dkim_signature_fuzz.cc).
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
inline constexpr size_t kDkimMaxTags = 64;                   // tag-specs in one tag-list
inline constexpr size_t kDkimMaxSignedHeaders = 256;         // names in h=
inline constexpr size_t kDkimMaxTimeDigits = 12;             // §3.5 t=/x=: 1*12DIGIT
inline constexpr size_t kDkimMaxLengthDigits = 76;           // §3.5 l=: 1*76DIGIT (must also fit 64 bits)
inline constexpr size_t kDkimMaxKeyRecords = 4;              // TXT records tried per key name (§6.1.2)
inline constexpr unsigned kDkimMinRsaBits = 1024;            // RFC 8301 §3.2

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
  int instance = 0;                      // ARC-Message-Signature only: i= (RFC 8617 §4.2.1)
};
// The value of a DKIM-Signature field (after "DKIM-Signature:"). Errors name the tag:
// "missing required tag bh=", "h= does not include From".
Result<DkimSignature> parseDkimSignature(std::string_view value);
// The value of an ARC-Message-Signature (RFC 8617 §4.1.2): the DKIM-Signature tags without
// v=, i= is the instance (1..kArcMaxInstances), From need not be signed, ARC-Seal must not be.
Result<DkimSignature> parseArcMessageSignature(std::string_view value);
// "rsa-sha256", "rsa-sha1", "ed25519-sha256".
const char* dkimAlgorithmName(DkimAlgorithm a);

struct DkimKey {
  std::string key_type = "rsa";          // k=
  std::vector<std::string> hashes;       // h= (empty: any)
  std::string public_key;                // p= decoded (DER SubjectPublicKeyInfo for rsa, 32 bytes raw for ed25519); empty: revoked
  bool testing = false;                  // t=y
  bool strict_identity = false;          // t=s
  std::vector<std::string> services;     // s=
};
Result<DkimKey> parseDkimKey(std::string_view txt);

// How RFC 6376's outcomes map onto RFC 8601 §2.7.1 results here:
//   pass       the body hash and the signature verify with a usable key.
//   fail       the check was made and failed: body hash mismatch, signature mismatch; also a
//              revoked key (empty p=: §6.1.2 says "treat this as a failed signature check")
//              and an expired signature (x= in the past: §3.5 "MAY be considered invalid").
//   policy     valid in form but not acceptable (RFC 8301): a=rsa-sha1 (not verified at all:
//              "Verifiers MUST NOT consider signatures using rsa-sha1 valid") and RSA keys
//              under kDkimMinRsaBits.
//   temperror  the key lookup failed temporarily (§6.1.2 TEMPFAIL).
//   permerror  the signature cannot be checked and never will be (§6.1.1/§6.1.2 PERMFAIL
//              that is not a failed check): signature syntax, h= without From, i= outside d=,
//              l= beyond the body, no key record (NXDOMAIN/NODATA), key syntax, k=/a= or key
//              h= mismatch, service type not email, t=s with i= in a subdomain.
//   none       not checked: beyond max_signatures ("not checked (limit)").
// neutral is never produced.
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
  int64_t now = 0;               // unix seconds, for x=; 0 or less: the system clock
};

// Verifies every DKIM-Signature of `message` (CRLF lines, header + body), top first, up to
// max_signatures. Body hashing runs on `cpu` when given (large messages), else inline.
// No signature: an empty vector (reported as dkim=none).
net::awaitable<std::vector<DkimVerdict>> verifyDkim(Dns& dns, std::shared_ptr<const std::string> message,
                                                    DkimVerifyOptions options, asio::thread_pool* cpu = nullptr);

}  // namespace postern::auth
