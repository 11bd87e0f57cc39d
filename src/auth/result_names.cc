// Result names of SPF, DKIM and ARC as Authentication-Results writes them (RFC 8601 §2.7.1
// dkim, §2.7.2 spf with RFC 7208 §2.6, RFC 8617 §10.1 arc). Here until the SPF/DKIM/ARC
// branches land with their own definitions; then exactly one copy of each must remain.
#include "auth/arc.h"
#include "auth/dkim_verify.h"
#include "auth/spf.h"

namespace postern::auth {

const char* spfResultName(SpfResult r) {
  switch (r) {
    case SpfResult::kNone: return "none";
    case SpfResult::kNeutral: return "neutral";
    case SpfResult::kPass: return "pass";
    case SpfResult::kFail: return "fail";
    case SpfResult::kSoftFail: return "softfail";
    case SpfResult::kTempError: return "temperror";
    case SpfResult::kPermError: return "permerror";
  }
  return "none";
}

const char* dkimResultName(DkimResult r) {
  switch (r) {
    case DkimResult::kNone: return "none";
    case DkimResult::kPass: return "pass";
    case DkimResult::kFail: return "fail";
    case DkimResult::kNeutral: return "neutral";
    case DkimResult::kPolicy: return "policy";
    case DkimResult::kTempError: return "temperror";
    case DkimResult::kPermError: return "permerror";
  }
  return "none";
}

const char* arcResultName(ArcResult r) {
  switch (r) {
    case ArcResult::kNone: return "none";
    case ArcResult::kPass: return "pass";
    case ArcResult::kFail: return "fail";
  }
  return "none";
}

}  // namespace postern::auth
