// How many bytes a mailbox holds, for quota checks at RCPT and at delivery. Usage is the
// sum over every message file of the Maildir++ mailbox: cur/ and new/ of INBOX and of
// each ".Folder" (tmp/ holds nothing delivered yet). A file's size is taken from the
// ",S=<size>" in its name when present (Dovecot and Postern both write it), else from
// lstat(). A scan is a directory walk, so results are cached per mailbox for a short
// lifetime, and this process's own deliveries are added to the cached figure.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace postern::delivery {

// A scanned figure is trusted this long; then the mailbox is walked again (IMAP expunges,
// messages moved in by other tools).
inline constexpr std::chrono::seconds kQuotaUsageLifetime{30};

// The size encoded as ",S=<digits>" in a Maildir file name, if any. Pure.
std::optional<uint64_t> maildirSizeFromName(std::string_view name);
// The bytes in the Maildir++ mailbox at `dir` (see above). Missing folders count as empty;
// symbolic links are neither followed nor counted.
uint64_t scanMaildirUsage(const std::string& dir);

class QuotaUsage {
 public:
  using Clock = std::chrono::steady_clock;
  // `root`: the mailbox root (<root>/<domain>/<local>, see maildir.h).
  explicit QuotaUsage(std::string root, Clock::duration lifetime = kQuotaUsageLifetime)
      : root_(std::move(root)), lifetime_(lifetime) {}

  // Bytes used by `mailbox` (lowercased user@domain); scans when the cached figure is
  // older than the lifetime. Thread-safe; blocking file-system reads on a scan.
  uint64_t usage(const std::string& mailbox);
  // Whether `bytes` more fit under `limit` (0: no limit); if so they are counted at once,
  // so that two deliveries racing for the last bytes cannot both pass. `used` receives
  // the usage before this message.
  bool reserve(const std::string& mailbox, uint64_t bytes, uint64_t limit, uint64_t* used = nullptr);
  // Gives back `bytes` reserved for a message that was not delivered after all.
  void release(const std::string& mailbox, uint64_t bytes);

 private:
  // One mailbox's figure. Its own mutex is held across that mailbox's walk, so a scan
  // (and the check-and-add of reserve) is atomic per mailbox without holding up lookups of
  // every other mailbox, as one lock for the whole cache did.
  struct Entry {
    std::mutex mu;
    bool scanned_once = false;
    uint64_t bytes = 0;
    Clock::time_point scanned;
  };
  Entry& entry(const std::string& mailbox);                // stable: node-based map
  void refresh(Entry& e, const std::string& mailbox);      // REQUIRES: e.mu held

  std::string root_;
  Clock::duration lifetime_;
  std::mutex mu_;   // guards cache_ itself (insertions), never held across file-system work
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace postern::delivery
