// File-system helpers with explicit durability: every function says what it syncs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern {

// mkdir -p; fsyncs each folder it creates and its parent, so a created path survives a crash.
Status makeDirs(const std::string& path, unsigned mode = 0750);
// fsync() of a folder: makes renames and creations inside it durable.
Status fsyncDir(const std::string& path);
// The whole file (readRegularFile in util/file_source.h: at most 64 MiB, regular files only).
Result<std::string> readFile(const std::string& path);
// Writes `data` to `fd` completely (retries on EINTR and short writes).
Status writeAll(int fd, const void* data, size_t n);
std::string dirName(const std::string& path);
// Replaces `path` with `content` (mode `mode`) durably: written to `path` + `tmp_suffix`
// (created afresh with O_EXCL and O_NOFOLLOW, so a planted link is never written through),
// fsynced, renamed over `path`, and the folder fsynced. On failure `path` is unchanged and
// the temporary file is removed.
Status replaceFileDurably(const std::string& path, std::string_view content, unsigned mode = 0600,
                          const std::string& tmp_suffix = ".tmp");

// What stat() says about a file, to notice replacement (inode), rewrite (size, mtime)
// or removal between two looks.
struct FileStamp {
  bool exists = false;
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp fileStamp(const std::string& path);

}  // namespace postern
