// Watches a set of files for replacement or rewrite: inotify on their folders (so
// rename-into-place as done by certbot and acme.sh is seen, as are in-place writes),
// plus a periodic stat() comparison as a fallback for file systems without inotify.
// Calls `on_change` once things have been quiet for a short moment, so a renewal that
// writes several files is picked up as one change.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio/posix/stream_descriptor.hpp>

#include "net/asio.h"
#include "util/file_source.h"
#include "util/fs.h"

namespace postern::app {

inline constexpr std::chrono::milliseconds kWatchSettle{250};
// The periodic check's interval when inotify cannot watch a folder (no permission, as for
// certbot's root-only live/ folder once the daemon runs as its own user, or no inotify).
inline constexpr std::chrono::milliseconds kUnwatchedPollInterval{5000};

class FileWatcher {
 public:
  // `source` gives the files' stamps for the periodic check (the privileged reader can
  // stat files the daemon's own user cannot).
  FileWatcher(asio::io_context& io, std::vector<std::string> files, std::chrono::milliseconds poll_interval,
              std::function<void()> on_change, FileSource& source = directFiles());
  ~FileWatcher();
  void start();
  void stop();

 private:
  net::awaitable<void> readEvents();
  net::awaitable<void> poll();
  void changed();

  asio::io_context& io_;
  std::vector<std::string> files_;
  std::vector<std::string> basenames_;
  std::chrono::milliseconds poll_interval_;
  std::function<void()> on_change_;
  FileSource& source_;
  std::map<std::string, FileStamp> stamps_;
  int inotify_fd_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> stream_;
  asio::steady_timer settle_;
  uint64_t generation_ = 0;
  bool stopped_ = false;
};

}  // namespace postern::app
