// Mailbox usage for quotas (see quota_usage.h).
#include "delivery/quota_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "delivery/maildir.h"
#include "util/strings.h"

namespace postern::delivery {
namespace {

// Sums the regular files of one folder (cur/ or new/), opened below `parent_fd`.
uint64_t sumFolder(int parent_fd, const char* name) {
  int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return 0;
  }
  uint64_t total = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;   // ".", "..", and hidden files are no messages
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
    if (auto s = maildirSizeFromName(e->d_name)) {
      total += *s;
      continue;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_size);
  }
  ::closedir(d);
  return total;
}

uint64_t sumMailFolder(int fd) { return sumFolder(fd, "cur") + sumFolder(fd, "new"); }

}  // namespace

std::optional<uint64_t> maildirSizeFromName(std::string_view name) {
  // The info part (":2,flags") follows the fields; the size is one of the ',' fields.
  std::string_view base = name.substr(0, name.find(':'));
  for (size_t at = base.find(",S="); at != std::string_view::npos; at = base.find(",S=", at + 1)) {
    std::string_view rest = base.substr(at + 3);
    std::string_view digits = rest.substr(0, rest.find(','));
    if (auto v = parseDecimal(digits, UINT64_MAX >> 4)) return v;
  }
  return std::nullopt;
}

uint64_t scanMaildirUsage(const std::string& dir) {
  int box = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (box < 0) return 0;
  uint64_t total = sumMailFolder(box);
  std::vector<std::string> folders;
  if (int fd = ::dup(box); fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n.size() < 2 || n[0] != '.' || n == "..") continue;   // Maildir++ folders are ".Name"
        if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
        folders.emplace_back(n);
      }
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  for (const auto& f : folders) {
    int fd = ::openat(box, f.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    total += sumMailFolder(fd);
    ::close(fd);
  }
  ::close(box);
  return total;
}

QuotaUsage::Entry& QuotaUsage::entry(const std::string& mailbox) {
  std::lock_guard lock(mu_);
  return cache_[mailbox];   // unordered_map nodes do not move: the reference stays valid
}

void QuotaUsage::refresh(Entry& e, const std::string& mailbox) {
  auto now = Clock::now();
  if (e.scanned_once && now - e.scanned < lifetime_) return;
  uint64_t bytes = 0;
  if (auto dir = mailboxDir(root_, mailbox)) bytes = scanMaildirUsage(*dir);
  e.bytes = bytes;
  e.scanned = now;
  e.scanned_once = true;
}

uint64_t QuotaUsage::usage(const std::string& mailbox) {
  Entry& e = entry(mailbox);
  std::lock_guard lock(e.mu);
  refresh(e, mailbox);
  return e.bytes;
}

bool QuotaUsage::reserve(const std::string& mailbox, uint64_t bytes, uint64_t limit, uint64_t* used) {
  Entry& e = entry(mailbox);
  std::lock_guard lock(e.mu);
  refresh(e, mailbox);
  if (used != nullptr) *used = e.bytes;
  if (limit != 0 && e.bytes + bytes > limit) return false;
  e.bytes += bytes;
  return true;
}

void QuotaUsage::release(const std::string& mailbox, uint64_t bytes) {
  Entry& e = entry(mailbox);
  std::lock_guard lock(e.mu);
  e.bytes -= std::min(bytes, e.bytes);
}

}  // namespace postern::delivery
