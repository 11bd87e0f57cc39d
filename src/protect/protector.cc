#include "protect/protector.h"

#include <fmt/format.h>

#include <algorithm>

#include "directory/file_edit.h"
#include "log/log.h"
#include "util/fs.h"
#include "util/strings.h"

namespace postern::protect {

namespace {
constexpr int64_t kRateWindowSeconds = 60;
constexpr int64_t kUserWindowSeconds = 3600;
constexpr unsigned kMaxEscalation = 20;
constexpr unsigned kSweepEvery = 4096;   // table operations between sweeps of idle clients
}  // namespace

std::string_view offenseName(Offense o) {
  switch (o) {
    case Offense::kAuthFailure: return "auth_failures";
    case Offense::kRelayAttempt: return "relay_attempts";
    case Offense::kUnknownRecipient: return "unknown_recipients";
    case Offense::kProtocolError: return "protocol_errors";
    case Offense::kEarlyTalker: return "early_talkers";
  }
  return "?";
}

Protector::Protector(const config::Protect& cfg, std::vector<Cidr> trusted_proxies, std::string state_file,
                     Counters& counters)
    : cfg_(cfg), trusted_proxies_(std::move(trusted_proxies)), state_file_(std::move(state_file)), counters_(counters) {}

int64_t Protector::now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
}

// A damaged line (a hand edit, a disk error) is named and skipped: the other bans still
// hold, and the server starts. The next save writes the file without it.
Status Protector::load() {
  auto text = readFile(state_file_);
  if (!text) return Status::ok();   // no bans yet
  std::string_view rest = *text;
  size_t line_no = 0;
  std::lock_guard lock(mu_);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    auto bans = parseBans(line);
    if (!bans) {
      counters_.inc("protect.bans_file_bad_line");
      std::string why = bans.status().message();
      if (auto colon = why.find(": "); why.rfind("bans:", 0) == 0 && colon != std::string::npos) why = why.substr(colon + 2);
      log::error("protect.bans_file_bad_line").kv("file", fmt::format("{}:{}", state_file_, line_no)).kv("reason", why)
          .kv("action", "line skipped; the other bans are loaded");
      continue;
    }
    for (auto& b : *bans) bans_[b.key] = b;
  }
  return Status::ok();
}

std::string Protector::keyOf(const IpAddress& a) const {
  IpAddress u = a.unmapped();
  if (u.isV4() || cfg_.ipv6_prefix >= 128) return u.toString();
  return fmt::format("{}/{}", u.masked(cfg_.ipv6_prefix).toString(), cfg_.ipv6_prefix);
}

std::optional<std::string> Protector::keyFromText(std::string_view text) const {
  if (auto ip = IpAddress::parse(text)) return keyOf(*ip);
  auto c = Cidr::parse(text);
  if (!c || c->network().isV4() || c->prefixLength() != cfg_.ipv6_prefix) return std::nullopt;
  return keyOf(c->network());
}

bool Protector::exempt(const IpAddress& a) const {
  return anyContains(cfg_.allow_networks, a) || anyContains(trusted_proxies_, a);
}

void Protector::prune(Window& w, int64_t horizon) {
  while (!w.times.empty() && w.times.front() < horizon) w.times.pop_front();
}

unsigned Protector::thresholdFor(Offense o) const {
  switch (o) {
    case Offense::kAuthFailure: return cfg_.auth_failures.threshold;
    case Offense::kRelayAttempt: return cfg_.relay_attempts.threshold;
    case Offense::kUnknownRecipient: return cfg_.unknown_recipients.threshold;
    case Offense::kProtocolError: return cfg_.protocol_errors.threshold;
    case Offense::kEarlyTalker: return cfg_.early_talkers.threshold;
  }
  return 0;
}

std::optional<Ban> Protector::banned(const IpAddress& a) {
  if (exempt(a)) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = bans_.find(keyOf(a));
  if (it == bans_.end() || it->second.until <= now()) return std::nullopt;
  return it->second;
}

bool Protector::record(const IpAddress& a, Offense o, std::string_view detail) {
  counters_.inc(fmt::format("protect.offense.{}", offenseName(o)));
  if (exempt(a)) return false;
  unsigned threshold = thresholdFor(o);
  if (threshold == 0) return false;
  std::lock_guard lock(mu_);
  sweepLocked();
  std::string key = keyOf(a);
  int64_t t = now();
  Window& w = clients_[key].offenses[o];
  prune(w, t - static_cast<int64_t>(cfg_.window_ms / 1000));
  w.times.push_back(t);
  if (w.times.size() < threshold) return false;
  if (auto it = bans_.find(key); it != bans_.end() && it->second.until > t) return true;   // already banned
  size_t count = w.times.size();
  w.times.clear();
  banLocked(key, 0, fmt::format("{} {} in {} ({})", count, offenseName(o), formatDurationMs(cfg_.window_ms), detail));
  return true;
}

Ban Protector::banLocked(const std::string& key, int64_t duration_s, std::string reason) {
  int64_t t = now();
  unsigned level = 0;
  if (auto it = bans_.find(key); it != bans_.end()) {
    // A repeat offender: the previous ban (active or expired within max_ban_time) escalates.
    if (it->second.until + static_cast<int64_t>(cfg_.max_ban_time_ms / 1000) > t)
      level = std::min(it->second.level + 1, kMaxEscalation);
  }
  int64_t dur = duration_s;
  if (dur == 0) {
    uint64_t ms = cfg_.ban_time_ms;
    for (unsigned i = 0; i < level && ms < cfg_.max_ban_time_ms; ++i) ms *= 2;
    dur = static_cast<int64_t>(std::min(ms, cfg_.max_ban_time_ms) / 1000);
  }
  Ban b{key, t + dur, level, reason};
  bans_[key] = b;
  counters_.inc("protect.bans");
  log::warn("protect.ban").kv("client", key).kv("duration", formatDurationMs(uint64_t(dur) * 1000))
      .kv("level", uint64_t(level)).kv("reason", reason);
  persist();
  return b;
}

Ban Protector::ban(const std::string& key, int64_t duration_s, std::string reason) {
  std::lock_guard lock(mu_);
  return banLocked(key, duration_s, std::move(reason));
}

bool Protector::unban(const std::string& key, std::string_view why) {
  std::lock_guard lock(mu_);
  auto it = bans_.find(key);
  if (it == bans_.end()) return false;
  bool active = it->second.until > now();
  bans_.erase(it);
  clients_.erase(key);
  log::info("protect.unban").kv("client", key).kv("reason", why).kv("was_active", active);
  persist();
  return true;
}

std::vector<Ban> Protector::list() {
  std::lock_guard lock(mu_);
  std::vector<Ban> out;
  int64_t t = now();
  for (const auto& [k, b] : bans_)
    if (b.until > t) out.push_back(b);
  return out;
}

void Protector::persist() {
  std::vector<Ban> snapshot;
  int64_t horizon = now() - static_cast<int64_t>(cfg_.max_ban_time_ms / 1000);
  for (auto it = bans_.begin(); it != bans_.end();) {
    if (it->second.until < horizon) {
      it = bans_.erase(it);   // long expired: no longer counts for escalation
    } else {
      snapshot.push_back(it->second);
      ++it;
    }
  }
  auto write = [path = state_file_, text = formatBans(snapshot), gen = ++generation_, writes = writes_] {
    std::lock_guard lock(writes->mu);
    if (gen < writes->written) return;   // a newer snapshot is on disk already
    if (Status s = directory::writeFileAtomic(path, text, 0600); !s)   // state: the daemon's only
      log::error("protect.persist_failed").kv("file", path).kv("reason", s.message());
    else
      writes->written = gen;
  };
  if (offload_) offload_(write);
  else write();
}

// REQUIRES: mu_ held. Forgets clients with no open connection and nothing recent, so a
// botnet of one-shot addresses cannot grow the table without bound.
void Protector::sweepLocked() {
  if (++ops_ % kSweepEvery != 0) return;
  int64_t t = now();
  int64_t horizon = t - std::max<int64_t>(kRateWindowSeconds, static_cast<int64_t>(cfg_.window_ms / 1000));
  for (auto it = clients_.begin(); it != clients_.end();) {
    ClientState& c = it->second;
    bool recent = c.connections > 0;
    prune(c.connects, t - kRateWindowSeconds);
    recent = recent || !c.connects.times.empty();
    for (auto& [o, w] : c.offenses) {
      prune(w, horizon);
      recent = recent || !w.times.empty();
    }
    it = recent ? std::next(it) : clients_.erase(it);
  }
  for (auto* table : {&user_messages_, &user_recipients_}) {
    for (auto it = table->begin(); it != table->end();) {
      prune(it->second, t - kUserWindowSeconds);
      it = it->second.times.empty() ? table->erase(it) : std::next(it);
    }
  }
}

Protector::Admit Protector::admitConnection(const IpAddress& a) {
  bool ex = exempt(a);
  std::lock_guard lock(mu_);
  sweepLocked();
  std::string key = keyOf(a);
  int64_t t = now();
  if (!ex) {
    if (auto it = bans_.find(key); it != bans_.end() && it->second.until > t) return Admit::kBanned;
  }
  ClientState& c = clients_[key];
  if (!ex) {
    if (cfg_.max_connections_per_client && c.connections >= cfg_.max_connections_per_client)
      return Admit::kTooManyConnections;
    prune(c.connects, t - kRateWindowSeconds);
    if (cfg_.max_connection_rate && c.connects.times.size() >= cfg_.max_connection_rate) return Admit::kRateExceeded;
    c.connects.times.push_back(t);
  }
  c.connections++;
  return Admit::kOk;
}

void Protector::releaseConnection(const IpAddress& a) {
  std::lock_guard lock(mu_);
  auto it = clients_.find(keyOf(a));
  if (it == clients_.end()) return;
  if (it->second.connections > 0) it->second.connections--;
  // Forget idle clients with nothing recent, so the table stays bounded.
  if (it->second.connections == 0) {
    int64_t horizon = now() - std::max<int64_t>(kRateWindowSeconds, static_cast<int64_t>(cfg_.window_ms / 1000));
    bool recent = false;
    prune(it->second.connects, now() - kRateWindowSeconds);
    recent = !it->second.connects.times.empty();
    for (auto& [o, w] : it->second.offenses) {
      prune(w, horizon);
      recent = recent || !w.times.empty();
    }
    if (!recent) clients_.erase(it);
  }
}

bool Protector::allowInHour(std::map<std::string, Window>& table, const std::string& user, unsigned limit) {
  if (limit == 0) return true;
  std::lock_guard lock(mu_);
  Window& w = table[user];
  int64_t t = now();
  prune(w, t - kUserWindowSeconds);
  if (w.times.size() >= limit) return false;
  w.times.push_back(t);
  return true;
}

bool Protector::allowMessage(const std::string& user) {
  return allowInHour(user_messages_, user, cfg_.max_messages_per_user);
}

bool Protector::allowRecipient(const std::string& user) {
  return allowInHour(user_recipients_, user, cfg_.max_recipients_per_user);
}

}  // namespace postern::protect
