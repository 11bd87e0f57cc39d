#include "queue/queue.h"

#include <fmt/format.h>

#include "log/log.h"
#include "queue/dsn.h"
#include "util/thread_name.h"
#include "util/time_text.h"

namespace postern::queue {

namespace {
constexpr uint64_t kUsPerSecond = 1'000'000;
constexpr std::string_view kNoOutbound = "outbound delivery is not running; kept in the queue";
}  // namespace

uint64_t Queue::nowUs() { return nowUnixUs(); }

Queue::Queue(spool::Spool& spool, QueueOptions options, LocalMailbox local, NewEnvelope fresh)
    : spool_(spool), options_(std::move(options)), local_(std::move(local)), fresh_(std::move(fresh)) {
  thread_ = std::thread([this] {
    util::setThreadName("postern-queue");
    schedulerLoop();
  });
}

Queue::~Queue() { stop(); }

void Queue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Queue::backoffUs(uint32_t attempts) const {
  uint64_t d = static_cast<uint64_t>(options_.retry_min.count()) * 1000;
  uint64_t cap = static_cast<uint64_t>(options_.retry_max.count()) * 1000;
  for (uint32_t i = 1; i < attempts && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

void Queue::schedule(const std::string& qid, uint64_t due_us, std::shared_ptr<const std::string> body) {
  Entry& e = entries_[qid];
  e.due_us = due_us;
  if (body) e.body = std::move(body);
  timers_.emplace(due_us, qid);
}

void Queue::add(const spool::Envelope& env, std::shared_ptr<const std::string> body) {
  {
    std::lock_guard lock(mu_);
    schedule(env.queue_id, 0, std::move(body));
  }
  cv_.notify_all();
}

void Queue::recovered(const std::vector<spool::Pending>& pending) {
  {
    std::lock_guard lock(mu_);
    for (const auto& p : pending) {
      uint64_t due = UINT64_MAX;
      for (const auto& s : p.state)
        if (s.status == spool::RcptStatus::kPending) due = std::min(due, s.next_attempt_us);
      if (due != UINT64_MAX) schedule(p.env.queue_id, due, nullptr);
    }
  }
  cv_.notify_all();
}

void Queue::schedulerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    uint64_t now = nowUs();
    while (!timers_.empty() && timers_.begin()->first <= now && !stopping_) {
      auto [due, qid] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto it = entries_.find(qid);
      if (it == entries_.end() || it->second.in_flight || it->second.due_us != due) continue;   // stale
      it->second.in_flight = true;
      it->second.outstanding = 1;
      ++in_flight_;
      auto body = std::move(it->second.body);
      lock.unlock();
      dispatch(qid, std::move(body));
      lock.lock();
    }
    if (in_flight_ == 0) idle_cv_.notify_all();
    if (stopping_) break;
    if (timers_.empty()) {
      cv_.wait(lock);
    } else {
      uint64_t due = timers_.begin()->first, t = nowUs();
      if (due > t) cv_.wait_for(lock, std::chrono::microseconds(due - t));
    }
  }
}

// One attempt for every pending recipient: local ones through the deliverer, remote ones
// through the remote deliverer (each reports once; the attempt ends after both).
void Queue::dispatch(const std::string& qid, std::shared_ptr<const std::string> body) {
  auto msg = spool_.find(qid);
  if (!msg) {
    finishAttempt(qid);
    return;
  }
  delivery::Job local, remote;
  delivery::Report unavailable{qid, {}};
  bool fresh = body != nullptr;
  for (uint32_t i = 0; i < msg->state.size(); ++i) {
    if (msg->state[i].status != spool::RcptStatus::kPending) continue;
    fresh = fresh && msg->state[i].attempts == 0;
    if (msg->env.recipients[i].local) local.recipients.push_back(i);
    else remote.recipients.push_back(i);
  }
  {
    std::lock_guard lock(mu_);
    stats_.attempts++;
  }
  if (!deliverer_) {
    for (uint32_t i : local.recipients)
      unavailable.outcomes.push_back({i, delivery::Outcome::kTemporary, "local delivery is not running"});
    local.recipients.clear();
  }
  if (!remote_) {
    for (uint32_t i : remote.recipients)
      unavailable.outcomes.push_back({i, delivery::Outcome::kTemporary, std::string(kNoOutbound)});
    remote.recipients.clear();
  }
  int parts = (local.recipients.empty() ? 0 : 1) + (remote.recipients.empty() ? 0 : 1);
  if (parts == 0) {
    report(std::move(unavailable));
    return;
  }
  {
    // The attempt ends after every part has reported (dispatch counted one already).
    std::lock_guard lock(mu_);
    int extra = parts - 1 + (unavailable.outcomes.empty() ? 0 : 1);
    in_flight_ += extra;
    entries_[qid].outstanding += extra;
  }
  if (!unavailable.outcomes.empty()) report(std::move(unavailable));
  if (!remote.recipients.empty()) {
    remote.env = msg->env;
    remote.body = body;
    remote_->submit(std::move(remote));
  }
  if (!local.recipients.empty()) {
    local.env = std::move(msg->env);
    local.body = std::move(body);
    local.recheck = !fresh;
    deliverer_->submit(std::move(local));
  }
}

void Queue::report(delivery::Report r) {
  auto msg = spool_.find(r.queue_id);
  uint64_t now = nowUs();
  std::vector<spool::StateChange> changes;
  std::vector<std::pair<uint32_t, std::string>> failed;
  uint64_t delivered = 0, deferred = 0, expired = 0;
  if (msg) {
    bool past_lifetime = now >= msg->env.accepted_us + static_cast<uint64_t>(options_.lifetime.count()) * 1000;
    for (const auto& o : r.outcomes) {
      if (o.index >= msg->state.size()) continue;
      spool::RcptState st = msg->state[o.index];
      if (st.status != spool::RcptStatus::kPending) continue;
      st.attempts++;
      const std::string& to = msg->env.recipients[o.index].mailbox;
      const bool remote = !msg->env.recipients[o.index].local;
      switch (o.kind) {
        case delivery::Outcome::kDelivered:
          st.status = spool::RcptStatus::kDelivered;
          st.last_error.clear();
          ++delivered;
          if (remote)
            log::info("delivery.sent").kv("queue_id", r.queue_id).kv("to", to).kv("status", "sent")
                .kv("relay", o.relay).kv("dsn", o.dsn).kv("tls", o.tls)
                .kv("delay", (now - std::min(now, msg->env.accepted_us)) / kUsPerSecond)
                .kv("attempts", uint64_t(st.attempts)).kv("reply", o.reason);
          break;
        case delivery::Outcome::kPermanent:
          st.status = spool::RcptStatus::kFailed;
          st.last_error = o.reason;
          failed.emplace_back(o.index, (o.dsn.empty() ? statusForLocalFailure(true, o.reason, false) : o.dsn) + " " +
                                           o.reason);
          break;
        case delivery::Outcome::kTemporary:
          st.last_error = o.reason;
          if (past_lifetime) {
            st.status = spool::RcptStatus::kFailed;
            ++expired;
            failed.emplace_back(o.index, (o.dsn.empty() || o.dsn[0] != '4' ? statusForLocalFailure(false, o.reason, true)
                                                                            : "5" + o.dsn.substr(1)) +
                                             " delivery time expired; last error: " + o.reason);
            break;
          }
          st.next_attempt_us = now + backoffUs(st.attempts);
          ++deferred;
          {
            auto line = log::warn("delivery.deferred");
            line.kv("queue_id", r.queue_id).kv("to", to).kv("status", "deferred");
            if (remote)
              line.kv("relay", o.relay.empty() ? std::string("none") : o.relay).kv("dsn", o.dsn)
                  .kv("tls", o.tls.empty() ? std::string("none") : o.tls)
                  .kv("delay", (now - std::min(now, msg->env.accepted_us)) / kUsPerSecond);
            line.kv("attempts", uint64_t(st.attempts)).kv("reason", o.reason)
                .kv("retry_in", (st.next_attempt_us - now) / kUsPerSecond);
          }
          break;
      }
      changes.push_back({o.index, std::move(st)});
    }
  }
  {
    std::lock_guard lock(mu_);
    stats_.delivered += delivered;
    stats_.deferred += deferred;
    stats_.expired += expired;
    stats_.bounced += failed.size();
  }
  if (msg && !changes.empty()) {
    if (!failed.empty()) {
      // The attempt ends when the notification is stored (finishWithNotification).
      finishWithNotification(*msg, std::move(changes), std::move(failed), true);
      return;
    }
    spool_.updateState(r.queue_id, std::move(changes));
  }
  finishAttempt(r.queue_id);
}

// One part of an attempt is recorded; after the last one the message is scheduled again
// at its earliest pending recipient's time, or forgotten when none is left.
void Queue::finishAttempt(const std::string& qid) {
  auto msg = spool_.find(qid);
  uint64_t next_due = UINT64_MAX;
  if (msg)
    for (const auto& s : msg->state)
      if (s.status == spool::RcptStatus::kPending) next_due = std::min(next_due, s.next_attempt_us);
  {
    std::lock_guard lock(mu_);
    --in_flight_;
    auto it = entries_.find(qid);
    if (it != entries_.end() && --it->second.outstanding <= 0) {
      it->second.outstanding = 0;
      it->second.in_flight = false;
      if (next_due == UINT64_MAX) entries_.erase(it);
      else schedule(qid, next_due, nullptr);
    }
  }
  cv_.notify_all();
  idle_cv_.notify_all();
}

// Recipients failed for good: the sender is told in one notification, committed to the
// spool before the failures are recorded (a crash in between repeats the notification
// rather than losing it).
void Queue::finishWithNotification(const spool::Pending& msg, std::vector<spool::StateChange> changes,
                                   std::vector<std::pair<uint32_t, std::string>> failed, bool in_attempt) {
  const std::string& qid = msg.env.queue_id;
  for (const auto& [idx, why] : failed)
    log::warn("delivery.bounced").kv("queue_id", qid).kv("to", msg.env.recipients[idx].mailbox)
        .kv("status", "bounced").kv("reason", why);
  if (msg.env.mail_from.empty() || (msg.env.flags & spool::kBounce)) {
    log::info("queue.no_notification").kv("queue_id", qid)
        .kv("reason", msg.env.mail_from.empty() ? "null sender" : "the failed message is itself a notification");
    spool_.updateState(qid, std::move(changes));
    if (in_attempt) finishAttempt(qid);
    return;
  }
  auto original = spool_.readBody(qid);
  DsnInput in;
  in.reporting_mta = options_.hostname;
  in.original_queue_id = qid;
  in.original_sender = msg.env.mail_from;
  in.arrival_us = msg.env.accepted_us;
  in.now_us = nowUs();
  for (const auto& [idx, why] : failed) {
    FailedRecipient f;
    f.address = msg.env.recipients[idx].address;
    f.status = why.substr(0, why.find(' '));
    f.diagnostic = why.substr(why.find(' ') + 1);
    in.failed.push_back(std::move(f));
  }
  in.original = original ? std::string_view(*original) : std::string_view();
  spool::Envelope env = fresh_();
  in.boundary_seed = env.queue_id;
  auto body = std::make_shared<const std::string>(buildDsn(in));
  env.mail_from.clear();
  env.flags = spool::kBounce;
  env.size = body->size();
  auto mailbox = local_ ? local_(msg.env.mail_from) : std::nullopt;
  env.recipients.push_back({msg.env.mail_from, mailbox.value_or(msg.env.mail_from), mailbox.has_value()});
  spool_.commit(env, body, [this, env, body, qid, in_attempt, changes = std::move(changes)](Status s) mutable {
    if (!s) {
      // Not stored: the recipients stay pending and are tried again after a pause.
      log::error("queue.notification_failed").kv("queue_id", qid).kv("reason", s.message())
          .kv("action", "the failure is retried");
      for (auto& c : changes) {
        c.state.status = spool::RcptStatus::kPending;
        c.state.next_attempt_us = nowUs() + backoffUs(1);
      }
      spool_.updateState(qid, std::move(changes));
      if (in_attempt) finishAttempt(qid);
      return;
    }
    log::info("queue.notification").kv("queue_id", env.queue_id).kv("for", qid).kv("to", env.recipients[0].mailbox)
        .kv("size", env.size);
    {
      std::lock_guard lock(mu_);
      stats_.notifications++;
    }
    spool_.updateState(qid, std::move(changes));
    add(env, body);
    if (in_attempt) finishAttempt(qid);
  });
}

Status Queue::retry(const std::string& queue_id) {
  auto msg = spool_.find(queue_id);
  if (!msg) return Status::notFound(fmt::format("no message {} in the queue", queue_id));
  spool_.updateState(queue_id, spool::changePending(*msg, [](spool::RcptState& st) { st.next_attempt_us = 0; }));
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(queue_id);
    if (it == entries_.end() || !it->second.in_flight) schedule(queue_id, 0, nullptr);
  }
  cv_.notify_all();
  return Status::ok();
}

size_t Queue::retryAll() {
  size_t n = 0;
  for (const auto& p : spool_.list()) n += retry(p.env.queue_id) ? 1 : 0;
  return n;
}

Status Queue::remove(const std::string& queue_id) {
  auto msg = spool_.find(queue_id);
  if (!msg) return Status::notFound(fmt::format("no message {} in the queue", queue_id));
  auto changes = spool::changePending(*msg, [](spool::RcptState& st) {
    st.status = spool::RcptStatus::kDeleted;
    st.last_error = "deleted by the operator";
  });
  log::warn("queue.deleted").kv("queue_id", queue_id).kv("recipients", uint64_t(changes.size()));
  spool_.updateState(queue_id, std::move(changes));
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(queue_id);
    if (it != entries_.end() && !it->second.in_flight) entries_.erase(it);
  }
  return Status::ok();
}

Status Queue::bounce(const std::string& queue_id) {
  auto msg = spool_.find(queue_id);
  if (!msg) return Status::notFound(fmt::format("no message {} in the queue", queue_id));
  auto changes = spool::changePending(*msg, [](spool::RcptState& st) {
    st.status = spool::RcptStatus::kFailed;
    st.last_error = st.last_error.empty() ? "returned to the sender by the operator"
                                          : "returned to the sender by the operator; last error: " + st.last_error;
  });
  std::vector<std::pair<uint32_t, std::string>> failed;
  for (const auto& c : changes) failed.emplace_back(c.index, "5.0.0 " + c.state.last_error);
  if (changes.empty()) return Status::ok();
  finishWithNotification(*msg, std::move(changes), std::move(failed), false);
  return Status::ok();
}

void Queue::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] {
    if (in_flight_ > 0) return false;
    return timers_.empty() || timers_.begin()->first > nowUs();
  });
}

QueueStats Queue::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t Queue::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

size_t Queue::scheduled() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [k, e] : entries_) n += e.in_flight ? 0 : 1;
  return n;
}

}  // namespace postern::queue
