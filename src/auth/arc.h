// ARC verification, RFC 8617 §5.2: ARC-Seal, ARC-Message-Signature and
// ARC-Authentication-Results sets, instance numbering, the cv= chain, the newest AMS and
// every AS verified with the DKIM machinery (auth/dkim_verify.h). The ARC field parsers and
// kArcMaxInstances are in auth/dkim_tags.h. Reported as arc=none|pass|fail
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


// oldest_pass_domain is left empty: only the newest AMS is verified (§5.2 step 6 is optional).
// A DNS temporary failure while fetching a key gives kFail with `temporary` set.
// The newest AMS's body hash runs on `cpu` when given (as verifyDkim's), else inline.
net::awaitable<ArcVerdict> verifyArc(Dns& dns, std::shared_ptr<const std::string> message, int64_t now,
                                     asio::thread_pool* cpu = nullptr);

}  // namespace postern::auth
