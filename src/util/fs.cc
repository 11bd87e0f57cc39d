#include "util/fs.h"

#include "util/file_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace postern {

std::string dirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

FileStamp fileStamp(const std::string& path) {
  FileStamp s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    s.exists = true;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  return s;
}

Status fsyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::io(fmt::format("open folder {}: {}", path, std::strerror(errno)));
  int r = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (r != 0) return Status::io(fmt::format("fsync folder {}: {}", path, std::strerror(e)));
  return Status::ok();
}

Status replaceFileDurably(const std::string& path, std::string_view content, unsigned mode,
                          const std::string& tmp_suffix) {
  const std::string tmp = path + tmp_suffix;
  ::unlink(tmp.c_str());   // a stale one from a crash; O_EXCL below refuses anything put back
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Status::fromErrno(errno, fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  Status s = writeAll(fd, content.data(), content.size());
  if (s && ::fchmod(fd, mode) != 0)   // the umask may have narrowed the mode open() gave
    s = Status::fromErrno(errno, fmt::format("chmod {}: {}", tmp, std::strerror(errno)));
  if (s && ::fsync(fd) != 0) s = Status::fromErrno(errno, fmt::format("fsync {}: {}", tmp, std::strerror(errno)));
  ::close(fd);
  if (s && ::rename(tmp.c_str(), path.c_str()) != 0)
    s = Status::fromErrno(errno, fmt::format("rename {}: {}", path, std::strerror(errno)));
  if (!s) {
    ::unlink(tmp.c_str());
    return s;
  }
  return fsyncDir(dirName(path));
}

Status makeDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return Status::invalid("empty path");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::ok();
    return Status::io(fmt::format("{} exists and is not a folder", path));
  }
  std::string parent = dirName(path);
  if (parent != path) {
    if (Status s = makeDirs(parent, mode); !s) return s;
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return Status::io(fmt::format("mkdir {}: {}", path, std::strerror(errno)));
  if (Status s = fsyncDir(path); !s) return s;
  return fsyncDir(parent);
}

Result<std::string> readFile(const std::string& path) { return readRegularFile(path); }

Status writeAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::io(std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::ok();
}

}  // namespace postern
