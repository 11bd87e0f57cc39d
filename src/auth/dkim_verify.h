// DKIM verification, RFC 6376 §6: DKIM-Signature tag parsing (§3.2, §3.5), key records
// (§3.6.1), body and header hashes with the canonicalizations of dkim/canon.h, signatures
// rsa-sha256 and ed25519-sha256 (RFC 8463). rsa-sha1 is not accepted any more (RFC 8301 §3.1:
// verifiers MUST NOT consider it valid): such signatures are reported as "policy" with the
// reason. RSA keys under 1024 bits likewise (RFC 8301 §3.2). The pure parsers are declared in
// auth/dkim_tags.h (fuzz: fuzz/dkim_signature_fuzz.cc); verification is dkim_verify.cc,
// shared with ARC through dkim_internal.h. Tests: tests/unit/dkim_verify_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dkim_tags.h"
#include "auth/dns.h"
#include "net/asio.h"
#include "util/status.h"

namespace postern::auth {

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
