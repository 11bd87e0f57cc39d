#include "app/file_watcher.h"

#include <asio/posix/stream_descriptor.hpp>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "log/log.h"
#include "util/fs.h"

namespace postern::app {

FileWatcher::FileWatcher(asio::io_context& io, std::vector<std::string> files, std::chrono::milliseconds poll_interval,
                         std::function<void()> on_change, FileSource& source)
    : io_(io), files_(std::move(files)), poll_interval_(poll_interval), on_change_(std::move(on_change)),
      source_(source), settle_(io) {
  for (const auto& f : files_) {
    auto slash = f.rfind('/');
    basenames_.push_back(slash == std::string::npos ? f : f.substr(slash + 1));
    stamps_[f] = source_.stamp(f);
  }
}

FileWatcher::~FileWatcher() { stop(); }

void FileWatcher::start() {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) poll_interval_ = std::min(poll_interval_, kUnwatchedPollInterval);
  if (inotify_fd_ >= 0) {
    std::set<std::string> dirs;
    for (const auto& f : files_) dirs.insert(dirName(f));
    for (const auto& d : dirs) {
      if (::inotify_add_watch(inotify_fd_, d.c_str(),
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MOVED_FROM) < 0) {
        poll_interval_ = std::min(poll_interval_, kUnwatchedPollInterval);
        log::warn("watch.unavailable").kv("folder", d).kv("reason", std::strerror(errno))
            .kv("fallback", fmt::format("check every {}s", poll_interval_.count() / 1000));
      }
    }
    stream_ = std::make_unique<asio::posix::stream_descriptor>(io_, inotify_fd_);
    asio::co_spawn(io_, readEvents(), asio::detached);
  }
  asio::co_spawn(io_, poll(), asio::detached);
}

void FileWatcher::stop() {
  stopped_ = true;
  std::error_code ignored;
  if (stream_) stream_->close(ignored);
  settle_.cancel();
}

void FileWatcher::changed() {
  // Wait for quiet before reacting: every event restarts the wait (expires_after cancels
  // the previous one) and only the newest wait acts, so a burst becomes one reload.
  uint64_t gen = ++generation_;
  settle_.expires_after(kWatchSettle);
  settle_.async_wait([this, gen](std::error_code ec) {
    if (ec || stopped_ || gen != generation_) return;
    for (const auto& f : files_) stamps_[f] = source_.stamp(f);
    on_change_();
  });
}

net::awaitable<void> FileWatcher::readEvents() {
  alignas(inotify_event) char buf[4096];
  while (!stopped_) {
    auto [ec, n] = co_await stream_->async_read_some(asio::buffer(buf), net::use_nothrow);
    if (ec) co_return;
    bool relevant = false;
    for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      std::string name = ev->len ? std::string(ev->name) : std::string();
      for (const auto& b : basenames_) relevant = relevant || b == name;
      off += sizeof(inotify_event) + ev->len;
    }
    if (relevant) changed();
  }
}

net::awaitable<void> FileWatcher::poll() {
  asio::steady_timer t(io_);
  while (!stopped_) {
    t.expires_after(poll_interval_);
    co_await t.async_wait(net::use_nothrow);
    if (stopped_) co_return;
    bool differs = false;
    for (const auto& f : files_) differs = differs || !(source_.stamp(f) == stamps_[f]);
    if (differs) changed();
  }
}

}  // namespace postern::app
