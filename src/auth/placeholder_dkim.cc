// SCAFFOLDING, not a feature: keeps main linking while DKIM/ARC verification is being written
// on the h-dkim branch. The branch that implements dkim_verify.h and arc.h deletes this file.
#include "auth/arc.h"
#include "auth/dkim_verify.h"

namespace postern::auth {
const char* dkimResultName(DkimResult) { return "none"; }
const char* arcResultName(ArcResult) { return "none"; }
net::awaitable<std::vector<DkimVerdict>> verifyDkim(Dns&, std::shared_ptr<const std::string>, DkimVerifyOptions,
                                                    asio::thread_pool*) {
  co_return std::vector<DkimVerdict>{};
}
net::awaitable<ArcVerdict> verifyArc(Dns&, std::shared_ptr<const std::string>, int64_t) { co_return ArcVerdict{}; }
}  // namespace postern::auth
