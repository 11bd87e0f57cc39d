// Protection keyed by the real client address (after any PROXY header): auto-ban on
// repeated offences, per-client connection limits, per-user sending limits. Never acts
// on an address in [protect] allow_networks or on a trusted proxy's own address.
// Bans survive restarts (state/bans, replaced atomically).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "protect/bans_file.h"
#include "util/counters.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::protect {

enum class Offense : uint8_t { kAuthFailure, kRelayAttempt, kUnknownRecipient, kProtocolError, kEarlyTalker };
std::string_view offenseName(Offense o);
// The counter of an offence: protect.offense.<offenseName>.
EventId offenseEvent(Offense o);

class Protector {
 public:
  using Clock = std::chrono::system_clock;
  // `trusted_proxies`: the trusted networks of every listener that accepts PROXY headers.
  Protector(const config::Protect& cfg, std::vector<Cidr> trusted_proxies, std::string state_file, Counters& counters);

  Status load();
  // Runs blocking writes of the bans file somewhere other than the caller (the server
  // hands in its worker pool). Without it, writes happen inline (command line, tests).
  void setOffloader(std::function<void(std::function<void()>)> f) { offload_ = std::move(f); }

  // The key an address is counted and banned under (IPv6: its /ipv6_prefix network).
  std::string keyOf(const IpAddress& a) const;
  bool exempt(const IpAddress& a) const;
  std::optional<Ban> banned(const IpAddress& a);
  // Counts an offence; true when it caused a ban (the caller then closes with 421).
  bool record(const IpAddress& a, Offense o, std::string_view detail);
  // Manual or automatic ban; `duration_s` 0 means the escalating automatic duration.
  Ban ban(const std::string& key, int64_t duration_s, std::string reason);
  bool unban(const std::string& key, std::string_view why);
  std::vector<Ban> list();
  // How many bans are in force now (list().size() without the copies; for /metrics).
  size_t activeBans();

  enum class Admit : uint8_t { kOk, kBanned, kTooManyConnections, kRateExceeded };
  // On kOk the connection is counted until releaseConnection().
  Admit admitConnection(const IpAddress& a);
  void releaseConnection(const IpAddress& a);

  // Per authenticated user and hour.
  bool allowMessage(const std::string& user);
  bool allowRecipient(const std::string& user);

  // Normalises a command-line argument ("203.0.113.5", "2001:db8::1", "2001:db8::/64") to a key.
  std::optional<std::string> keyFromText(std::string_view text) const;

 private:
  struct Window {
    std::deque<int64_t> times;   // seconds of recent events
  };
  struct ClientState {
    std::map<Offense, Window> offenses;
    unsigned connections = 0;
    Window connects;
  };
  unsigned thresholdFor(Offense o) const;
  int64_t now() const;
  static void prune(Window& w, int64_t horizon);
  void persist();   // REQUIRES: mu_ held (snapshots, then writes outside the lock or offloaded)
  Ban banLocked(const std::string& key, int64_t duration_s, std::string reason);
  // Counts one event for `user` unless `limit` events happened in the last hour.
  bool allowInHour(std::map<std::string, Window>& table, const std::string& user, unsigned limit);
  void sweepLocked();

  config::Protect cfg_;
  std::vector<Cidr> trusted_proxies_;
  std::string state_file_;
  Counters& counters_;
  std::function<void(std::function<void()>)> offload_;
  std::mutex mu_;
  std::map<std::string, Ban> bans_;            // active and recently expired (kept for escalation)
  std::map<std::string, ClientState> clients_;
  std::map<std::string, Window> user_messages_, user_recipients_;
  uint64_t ops_ = 0;
  // Saves of the bans file run on pool threads: one at a time, and a snapshot older than
  // the one already written is dropped (it would undo a newer ban or unban).
  struct Writes {
    std::mutex mu;
    uint64_t written = 0;   // generation of the snapshot on disk
  };
  std::shared_ptr<Writes> writes_ = std::make_shared<Writes>();
  uint64_t generation_ = 0;    // of the latest snapshot; REQUIRES: mu_ held
};

}  // namespace postern::protect
