// Greylisting: the first delivery attempt of an unknown triplet (client network, envelope
// sender, recipient) gets a temporary failure; a retry after `delay` and within
// `retry_window` passes, and the triplet then stays passed for `pass_lifetime` after its
// last use. Real MTAs retry; most spam software does not. The client is the real one (after
// any PROXY header), grouped by network (/24, /64) because large senders retry from another
// address of the same farm.
//
// The table lives in memory, bounded (the least recently seen are forgotten first), and is
// saved to <data_dir>/state/greylist (protect/greylist_file.h) so that a restart does not
// defer every sender again. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "protect/greylist_file.h"
#include "util/counters.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::protect {

class Greylist {
 public:
  using Clock = std::function<int64_t()>;   // unix seconds
  // `now`: empty means the system clock (tests inject their own).
  Greylist(const config::Greylist& cfg, std::string state_file, Counters& counters, Clock now = {});
  ~Greylist();
  Greylist(const Greylist&) = delete;
  Greylist& operator=(const Greylist&) = delete;

  // Reads the state file; a missing file is an empty table, a damaged line is logged,
  // counted (greylist.file_bad_line) and skipped.
  Status load();
  // Runs blocking saves somewhere other than the caller (the server's worker pool).
  // Without it, saves happen inline (tests).
  void setOffloader(std::function<void(std::function<void()>)> f) { offload_ = std::move(f); }
  // Writes the table now if it changed since the last save (at shutdown; in tests).
  void flush();

  enum class Outcome : uint8_t {
    kPass,          // retried after the delay, or passed before
    kDefer,         // first seen, or retried too early: 451 4.7.1
    kExempt,        // the caller said so (authenticated, allow-listed): nothing recorded
    kAutoAllowed,   // the network has passed `auto_allow` triplets: nothing recorded
  };
  struct Decision {
    Outcome outcome = Outcome::kPass;
    std::string network;      // the client's network (CIDR text)
    int64_t retry_in = 0;     // kDefer: seconds until a retry passes
    int64_t waited = 0;       // kPass: seconds from the first attempt to this one
    bool first_pass = false;  // kPass: this attempt turned the triplet from waiting to passed
  };
  // `sender` and `recipient` are used as given (the session lowercases them).
  Decision check(const IpAddress& client, bool exempt, std::string_view sender, std::string_view recipient);

  // The network a client is grouped under: "192.0.2.0/24", "2001:db8:1:2::/64".
  std::string networkOf(const IpAddress& client) const;
  size_t size() const;

 private:
  struct State;
  int64_t now() const;
  bool expired(const GreylistEntry& e, int64_t t) const;
  // REQUIRES: st.mu held. Drops expired entries, then the least recently seen while the
  // table is over max_entries.
  void trimLocked(State& st, int64_t t);
  void eraseLocked(State& st, std::unordered_map<std::string, GreylistEntry>::iterator it);
  void save(bool urgent);
  static void writeSnapshot(const std::shared_ptr<State>& st, const std::string& path);

  config::Greylist cfg_;
  std::string state_file_;
  Counters& counters_;
  Clock clock_;
  std::function<void(std::function<void()>)> offload_;
  // Shared with queued save jobs, which may run after this object is gone.
  std::shared_ptr<State> st_;
};

}  // namespace postern::protect
