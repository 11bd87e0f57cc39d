// DKIM and ARC tag parsing, pure (no DNS, no clock, no asio, so the fuzz build can compile
// it): tag=value lists (RFC 6376 §3.2), DKIM-Signature values (§3.5), key records (§3.6.1),
// and the ARC fields built on them (RFC 8617 §4.1). Implemented in dkim_tags.cc; included
// by dkim_verify.h and arc.h. Tests: tests/unit/dkim_verify_test.cc; fuzz:
// fuzz/dkim_signature_fuzz.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace postern::auth {

inline constexpr int kArcMaxInstances = 50;   // RFC 8617 §4.2.1
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

// An ARC-Seal value (RFC 8617 §4.1.3): i=, a=, b=, cv=, d=, s=, t=; h= is not allowed.
// Pure (dkim_tags.cc, fuzzed by fuzz/dkim_signature_fuzz.cc).
enum class ArcChainStatus : uint8_t { kNone, kPass, kFail };   // cv=
struct ArcSeal {
  int instance = 0;
  DkimAlgorithm algorithm = DkimAlgorithm::kRsaSha256;
  std::string b;               // base64, FWS removed
  ArcChainStatus cv = ArcChainStatus::kNone;
  std::string domain;          // d=, lower case
  std::string selector;        // s=
  std::optional<int64_t> timestamp;
};
Result<ArcSeal> parseArcSeal(std::string_view value);
// The i= of an ARC-Authentication-Results value ("i=1; mx.example; spf=pass ...", §4.1.1).
Result<int> parseArcResultsInstance(std::string_view value);

namespace dkimint {
// §3.5 base64string with FWS already removed; nullopt when it is not base64 (bad alphabet,
// length not a multiple of 4, padding anywhere but at the end).
std::optional<std::string> decodeBase64(std::string_view s);
}  // namespace dkimint

}  // namespace postern::auth
