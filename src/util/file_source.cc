#include "util/file_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace postern {
namespace {

class DirectFiles final : public FileSource {
 public:
  Result<std::string> read(const std::string& path) override { return readRegularFile(path); }
  FileStamp stamp(const std::string& path) override { return fileStamp(path); }
};

}  // namespace

FileSource& directFiles() {
  static DirectFiles direct;
  return direct;
}

Result<std::string> readRegularFile(const std::string& path, uint64_t max_size) {
  // O_NONBLOCK: a FIFO put in a file's place must not hang the reader; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    std::string msg = path + ": cannot read: " + std::strerror(err);
    return err == ENOENT ? Status::notFound(std::move(msg)) : Status::io(std::move(msg));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::io(path + ": cannot read: not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return Status::invalid(path + ": cannot read: larger than " + std::to_string(max_size >> 20) + " MiB");
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::io(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      ::close(fd);
      return Status::invalid(path + ": cannot read: larger than " + std::to_string(max_size >> 20) + " MiB");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace postern
