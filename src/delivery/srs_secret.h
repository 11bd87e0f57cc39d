// The SRS secret file ([srs] secret_file): made once with random bytes, then read at every
// start. Losing or changing it makes every address rewritten before invalid for bounces.
#pragma once

#include <cstddef>
#include <string>

#include "util/status.h"

namespace postern::delivery {

inline constexpr size_t kSrsSecretBytes = 32;   // written to a new secret file
inline constexpr unsigned kSrsSecretMode = 0600;

// Creates `path` with kSrsSecretBytes random bytes (mode kSrsSecretMode, O_EXCL, fsynced
// with its folder) when it does not exist. True when it created the file; false when one
// was there already (also when another process made it first).
Result<bool> createSrsSecretIfMissing(const std::string& path);

// Checks what was read from the secret file: at least kSrsMinSecretLength bytes (the file
// is used as it is, bytes and all). Errors name `path`.
Result<std::string> checkSrsSecret(std::string contents, const std::string& path);

}  // namespace postern::delivery
