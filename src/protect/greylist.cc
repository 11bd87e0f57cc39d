#include "protect/greylist.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "directory/file_edit.h"
#include "log/log.h"
#include "util/fs.h"
#include "util/strings.h"

namespace postern::protect {

namespace {
// Saves rewrite the whole file: a change that only adds or refreshes an entry waits for the
// next save at most this long (a lost one costs a sender one more delay); a triplet that
// just passed is saved at once (a lost one would defer a proven sender again).
constexpr int64_t kSaveIntervalSeconds = 30;
// Expired entries are swept every this many checks or seconds, whichever comes first, so
// that a network's count of passes (auto_allow) follows expiry within the interval.
constexpr unsigned kSweepEvery = 4096;
constexpr int64_t kSweepIntervalSeconds = 600;
// Over max_entries, the least recently seen are dropped down to this share of it, so that
// eviction runs once per many insertions rather than on each.
constexpr unsigned kTrimToPercent = 90;

std::string tripletKey(std::string_view network, std::string_view sender, std::string_view recipient) {
  std::string k;
  k.reserve(network.size() + sender.size() + recipient.size() + 2);
  k.append(network).append(1, '\0').append(sender).append(1, '\0').append(recipient);
  return k;
}
}  // namespace

struct Greylist::State {
  mutable std::mutex mu;
  std::unordered_map<std::string, GreylistEntry> entries;   // by tripletKey
  std::unordered_map<std::string, unsigned> passes;         // passed triplets per network
  uint64_t checks = 0;
  int64_t last_sweep = 0;         // unix seconds
  uint64_t generation = 0;        // bumped by every change
  int64_t last_save_request = 0;  // unix seconds
  bool save_queued = false;       // a save job is queued and has not taken its snapshot yet
  std::mutex write_mu;            // one save at a time
  uint64_t written = 0;           // generation on disk; REQUIRES: write_mu held
};

Greylist::Greylist(const config::Greylist& cfg, std::string state_file, Counters& counters, Clock now)
    : cfg_(cfg), state_file_(std::move(state_file)), counters_(counters), clock_(std::move(now)),
      st_(std::make_shared<State>()) {}

Greylist::~Greylist() = default;

int64_t Greylist::now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Greylist::networkOf(const IpAddress& client) const {
  IpAddress u = client.unmapped();
  unsigned bits = u.isV4() ? cfg_.ipv4_prefix : cfg_.ipv6_prefix;
  return fmt::format("{}/{}", u.masked(bits).toString(), bits);
}

size_t Greylist::size() const {
  std::lock_guard lock(st_->mu);
  return st_->entries.size();
}

bool Greylist::expired(const GreylistEntry& e, int64_t t) const {
  if (e.passed) return t - e.last_seen > static_cast<int64_t>(cfg_.pass_lifetime_ms / 1000);
  return t - e.first_seen > static_cast<int64_t>(cfg_.retry_window_ms / 1000);
}

void Greylist::eraseLocked(State& st, std::unordered_map<std::string, GreylistEntry>::iterator it) {
  if (it->second.passed) {
    auto p = st.passes.find(it->second.network);
    if (p != st.passes.end() && --p->second == 0) st.passes.erase(p);
  }
  st.entries.erase(it);
  st.generation++;
}

void Greylist::trimLocked(State& st, int64_t t) {
  for (auto it = st.entries.begin(); it != st.entries.end();) {
    auto next = std::next(it);
    if (expired(it->second, t)) eraseLocked(st, it);
    it = next;
  }
  if (st.entries.size() <= cfg_.max_entries) return;
  size_t keep = size_t(cfg_.max_entries) * kTrimToPercent / 100;
  std::vector<std::pair<int64_t, std::string>> by_age;
  by_age.reserve(st.entries.size());
  for (const auto& [k, e] : st.entries) by_age.emplace_back(e.last_seen, k);
  size_t drop = by_age.size() - keep;
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop), by_age.end());
  for (size_t i = 0; i < drop; ++i)
    if (auto it = st.entries.find(by_age[i].second); it != st.entries.end()) eraseLocked(st, it);
}

// A damaged line (a hand edit, a torn disk block) is named and skipped; the next save
// writes the file without it.
Status Greylist::load() {
  auto text = readFile(state_file_);
  if (!text) return Status::ok();   // nothing saved yet
  int64_t t = now();
  std::lock_guard lock(st_->mu);
  size_t line_no = 0;
  for (std::string_view line : split(*text, '\n')) {
    ++line_no;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto e = parseGreylistLine(line);
    if (!e) {
      counters_.inc("greylist.file_bad_line");
      log::error("greylist.file_bad_line").kv("file", fmt::format("{}:{}", state_file_, line_no))
          .kv("reason", e.status().message()).kv("action", "line skipped; the other entries are loaded");
      continue;
    }
    if (expired(*e, t)) continue;
    std::string key = tripletKey(e->network, e->sender, e->recipient);
    if (auto old = st_->entries.find(key); old != st_->entries.end()) eraseLocked(*st_, old);
    if (e->passed) st_->passes[e->network]++;
    st_->entries.emplace(std::move(key), std::move(*e));
  }
  trimLocked(*st_, t);
  st_->last_sweep = t;
  return Status::ok();
}

Greylist::Decision Greylist::check(const IpAddress& client, bool exempt, std::string_view sender,
                                   std::string_view recipient) {
  Decision d;
  d.network = networkOf(client);
  if (exempt) {
    d.outcome = Outcome::kExempt;
    return d;
  }
  int64_t t = now();
  bool urgent = false;
  {
    std::lock_guard lock(st_->mu);
    State& st = *st_;
    if (++st.checks % kSweepEvery == 0 || t - st.last_sweep >= kSweepIntervalSeconds) {
      trimLocked(st, t);
      st.last_sweep = t;
    }
    if (cfg_.auto_allow > 0) {
      if (auto p = st.passes.find(d.network); p != st.passes.end() && p->second >= cfg_.auto_allow) {
        d.outcome = Outcome::kAutoAllowed;
        return d;
      }
    }
    std::string key = tripletKey(d.network, sender, recipient);
    auto it = st.entries.find(key);
    if (it != st.entries.end() && expired(it->second, t)) {
      eraseLocked(st, it);
      it = st.entries.end();
    }
    const auto delay = static_cast<int64_t>(cfg_.delay_ms / 1000);
    if (it == st.entries.end()) {
      GreylistEntry e{d.network, std::string(sender), std::string(recipient), t, t, false};
      if (delay <= 0) {   // no delay: the first attempt passes (and still counts for auto_allow)
        e.passed = true;
        st.passes[d.network]++;
        d.outcome = Outcome::kPass;
        d.first_pass = urgent = true;
      } else {
        d.outcome = Outcome::kDefer;
        d.retry_in = delay;
      }
      st.entries.emplace(std::move(key), std::move(e));
      st.generation++;
      if (st.entries.size() > cfg_.max_entries) trimLocked(st, t);
    } else {
      GreylistEntry& e = it->second;
      e.last_seen = t;
      st.generation++;
      if (e.passed) {
        d.outcome = Outcome::kPass;
      } else if (t - e.first_seen >= delay) {
        e.passed = true;
        st.passes[e.network]++;
        d.outcome = Outcome::kPass;
        d.first_pass = urgent = true;
        d.waited = t - e.first_seen;
      } else {
        d.outcome = Outcome::kDefer;
        d.retry_in = delay - (t - e.first_seen);
      }
    }
  }
  save(urgent);
  return d;
}

void Greylist::save(bool urgent) {
  int64_t t = now();
  {
    std::lock_guard lock(st_->mu);
    if (st_->save_queued) return;   // the queued job will snapshot this change too
    if (!urgent && t - st_->last_save_request < kSaveIntervalSeconds) return;   // flush() or a later save
    st_->save_queued = true;
    st_->last_save_request = t;
  }
  auto job = [st = st_, path = state_file_] { writeSnapshot(st, path); };
  if (offload_) offload_(std::move(job));
  else job();
}

void Greylist::flush() { writeSnapshot(st_, state_file_); }

void Greylist::writeSnapshot(const std::shared_ptr<State>& st, const std::string& path) {
  std::lock_guard write_lock(st->write_mu);
  std::vector<GreylistEntry> snapshot;
  uint64_t generation;
  {
    std::lock_guard lock(st->mu);
    st->save_queued = false;
    generation = st->generation;
    if (generation == st->written) return;   // nothing new since the last save
    snapshot.reserve(st->entries.size());
    for (const auto& [k, e] : st->entries) snapshot.push_back(e);
  }
  // The file is the daemon's own state: 0600.
  if (Status s = directory::writeFileAtomic(path, formatGreylist(snapshot), 0600); !s) {
    log::error("greylist.save_failed").kv("file", path).kv("reason", s.message());
    return;
  }
  st->written = generation;
}

}  // namespace postern::protect
