// SCAFFOLDING, not a feature: keeps main linking while SPF is being written on the h-spf
// branch. The branch that implements spf.h deletes this file (duplicate symbols otherwise).
#include "auth/spf.h"

namespace postern::auth {
const char* spfResultName(SpfResult) { return "none"; }
net::awaitable<SpfOutcome> checkHost(Dns&, SpfRequest, std::string domain) {
  SpfOutcome o;
  o.domain = std::move(domain);
  o.result = SpfResult::kTempError;
  o.problem = "SPF not built yet";
  co_return o;
}
}  // namespace postern::auth
