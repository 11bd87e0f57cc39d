// ARC verification, RFC 8617 §5.2: ARC-Seal, ARC-Message-Signature and
// ARC-Authentication-Results sets, instance numbering, the cv= chain, the newest AMS and
// every AS verified with the DKIM machinery (auth/dkim_verify.h). Reported as arc=none|pass|fail
// in Authentication-Results; never changes delivery on its own.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/dkim_verify.h"
#include "auth/dns.h"
#include "net/asio.h"
#include "util/status.h"

namespace postern::auth {

inline constexpr int kArcMaxInstances = 50;   // §4.2.1

enum class ArcResult : uint8_t { kNone, kPass, kFail };
const char* arcResultName(ArcResult r);

struct ArcVerdict {
  ArcResult result = ArcResult::kNone;
  int instances = 0;            // the highest i= seen
  std::string reason;           // for fail: "AS i=2 signature mismatch", "missing AAR i=1", ...
  std::string oldest_pass_domain;   // d= of the oldest AMS that passes (RFC 8617 §5.2, reported as arc.oldest-pass)
  std::string sealer;           // d= of the newest ARC-Seal
  bool temporary = false;       // a fail caused by a temporary DNS failure (a later try may pass)
};

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

// oldest_pass_domain is left empty: only the newest AMS is verified (§5.2 step 6 is optional).
// A DNS temporary failure while fetching a key gives kFail with `temporary` set.
net::awaitable<ArcVerdict> verifyArc(Dns& dns, std::shared_ptr<const std::string> message, int64_t now);

}  // namespace postern::auth
