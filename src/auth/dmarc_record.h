// The pure part of DMARC (RFC 7489): the record parser of §6.3/§6.4 and the names of
// policies and results. No asio, no libpsl: compiled into the fuzz build
// (fuzz/dmarc_record_fuzz.cc). Included by auth/dmarc.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::auth {

inline constexpr size_t kDmarcMaxRecordBytes = 4096;   // longer TXT records are not parsed (permerror)
inline constexpr size_t kDmarcMaxUris = 16;             // rua=/ruf= URIs kept per tag; more are dropped

enum class DmarcPolicy : uint8_t { kNone, kQuarantine, kReject };
const char* dmarcPolicyName(DmarcPolicy p);   // "none", "quarantine", "reject"

struct DmarcRecord {
  DmarcPolicy p = DmarcPolicy::kNone;
  std::optional<DmarcPolicy> sp;
  bool adkim_strict = false;
  bool aspf_strict = false;
  unsigned pct = 100;
  std::vector<std::string> rua, ruf;   // kept for reporting; not acted on
};
// "v=DMARC1; p=reject; ..." (§6.4). v must come first, p= second (a record without a valid
// p= is still usable when rua= is present: §6.6.3 step 6; then p=none).
// Errors say what: "p= missing and no valid rua=", "sp=: unknown policy 'x'".
Result<DmarcRecord> parseDmarcRecord(std::string_view text);

// True when `text` starts with the version tag "v=DMARC1" (§6.6.3 steps 2 and 4: TXT records
// at _dmarc.<domain> that do not are discarded before counting).
bool isDmarcRecord(std::string_view text);

enum class DmarcResult : uint8_t { kNone, kPass, kFail, kTempError, kPermError };
const char* dmarcResultName(DmarcResult r);

}  // namespace postern::auth
