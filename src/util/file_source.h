// Where the daemon reads the files its configuration names: certificates, keys, accounts
// and aliases. Directly with its own rights, or, once it has dropped root, through the
// privileged reader (app/privileges.h) that still reads them as root: certbot leaves a
// renewed key root-owned and 0600, and a renewal the server cannot read is one it silently
// stops loading.
#pragma once

#include <cstdint>
#include <string>

#include "util/fs.h"
#include "util/status.h"

namespace postern {

// Largest file read this way (a certificate chain, a key, an accounts file).
inline constexpr uint64_t kMaxSourceFileSize = 64ull << 20;

class FileSource {
 public:
  virtual ~FileSource() = default;
  // The whole file. kNotFound when it does not exist; kInvalid past kMaxSourceFileSize;
  // kIo when it is not a regular file or cannot be read. Messages read "<path>: cannot read: <reason>".
  virtual Result<std::string> read(const std::string& path) = 0;
  // stat() of the file (following symbolic links, as certbot's live/ folder needs).
  virtual FileStamp stamp(const std::string& path) = 0;
};

// Reads with the process's own rights.
FileSource& directFiles();

// The read and stamp of a path with the caller's rights; shared by both sources.
Result<std::string> readRegularFile(const std::string& path, uint64_t max_size = kMaxSourceFileSize);

}  // namespace postern
