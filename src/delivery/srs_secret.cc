// The SRS secret file: see srs_secret.h.
#include "delivery/srs_secret.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "delivery/srs.h"
#include "util/fs.h"

namespace postern::delivery {

Result<bool> createSrsSecretIfMissing(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return false;
  unsigned char secret[kSrsSecretBytes];
  if (RAND_bytes(secret, sizeof secret) != 1) return Status::io(fmt::format("SRS secret {}: no random bytes", path));
  if (Status s = makeDirs(dirName(path), 0700); !s) return s;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kSrsSecretMode);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    return Status::fromErrno(errno, fmt::format("cannot create the SRS secret {}: {}", path, std::strerror(errno)));
  }
  Status s = writeAll(fd, secret, sizeof secret);
  if (s && ::fsync(fd) != 0) s = Status::fromErrno(errno, fmt::format("fsync {}: {}", path, std::strerror(errno)));
  ::close(fd);
  if (s) s = fsyncDir(dirName(path));
  if (!s) {
    ::unlink(path.c_str());   // a short secret must not be picked up at the next start
    return Status::io(fmt::format("cannot write the SRS secret {}: {}", path, s.message()));
  }
  return true;
}

Result<std::string> checkSrsSecret(std::string contents, const std::string& path) {
  if (contents.size() < kSrsMinSecretLength)
    return Status::invalid(fmt::format("SRS secret {} is {} bytes; it needs at least {} (delete it to have a new "
                                       "one made, which invalidates addresses rewritten before)",
                                       path, contents.size(), kSrsMinSecretLength));
  return contents;
}

}  // namespace postern::delivery
