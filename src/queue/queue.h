// The queue manager: schedules delivery attempts over the durable spool. It holds no
// state of its own that a restart would need: each recipient's status, attempt count and
// next attempt time are in the spool (kState records), and the in-memory timer is rebuilt
// from them at start-up.
//
// A temporary failure is retried with exponential backoff (retry_min, doubling, at most
// retry_max between tries) until `lifetime` has passed since acceptance; then, or at once
// for a permanent failure, the recipient fails for good and the sender gets one delivery
// status notification (dsn.h) for all such recipients of the message. There is never a
// notification about a notification (null sender, or a message we made).
//
// RFC 3461 DSN requests are honoured: a recipient with NOTIFY=NEVER, or a NOTIFY list
// without FAILURE, fails without a notification (still logged); RET=HDRS returns only the
// original's header; ENVID and ORCPT are reported (Original-Envelope-Id, Original-Recipient).
// A local delivery to a recipient with NOTIFY=SUCCESS gets a "delivered" notification
// (notifySuccess() for remote ones). After `delay_warning` since acceptance, the first
// temporary failure of a recipient that has not been warned (RcptState::warned, kept in the
// spool) sends one "delayed" notification for all such recipients of the message, unless
// its NOTIFY excludes DELAY.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/deliverer.h"
#include "delivery/remote.h"
#include "queue/dsn.h"
#include "spool/spool.h"

namespace postern::queue {

struct QueueOptions {
  std::chrono::milliseconds lifetime{5ll * 24 * 3600 * 1000};
  std::chrono::milliseconds retry_min{300'000};
  std::chrono::milliseconds retry_max{3'600'000};
  std::chrono::milliseconds delay_warning{0};   // 0: no delay warnings
  std::string hostname;   // Reporting-MTA and the notifications' From
};

struct QueueStats {
  uint64_t attempts = 0;
  uint64_t delivered = 0;
  uint64_t deferred = 0;
  uint64_t bounced = 0;          // recipients failed for good
  uint64_t notifications = 0;    // DSN messages made
  uint64_t expired = 0;          // recipients failed because lifetime passed
  uint64_t delay_warnings = 0;   // recipients warned that their delivery is delayed
};

// A recipient reported to notifySuccess().
struct SuccessNotice {
  uint32_t index = 0;        // in the message's envelope
  std::string remote_mta;    // the server that took it (Remote-MTA); empty: none
  std::string reply;         // its reply, e.g. "250 2.0.0 Ok: queued as X" (Diagnostic-Code: smtp)
};

class Queue {
 public:
  // Where a notification for `sender` goes: a local mailbox (user@domain) or nothing
  // (remote: it is queued for outbound delivery).
  using LocalMailbox = std::function<std::optional<std::string>(const std::string& sender)>;
  // A fresh envelope identity (queue id, pid, seq, accepted_us) for a notification.
  using NewEnvelope = std::function<spool::Envelope()>;

  Queue(spool::Spool& spool, QueueOptions options, LocalMailbox local, NewEnvelope fresh);
  ~Queue();
  // Stops starting attempts (reports of running ones are still recorded). Idempotent.
  void stop();
  // The deliverer that runs the attempts; set before any message is added.
  void setDeliverer(delivery::Deliverer* d) { deliverer_ = d; }
  // The deliverer of remote recipients (outbound SMTP); without one they are deferred.
  void setRemote(delivery::RemoteDeliverer* r) { remote_ = r; }

  // A message just committed (the body is passed when it is still in memory).
  void add(const spool::Envelope& env, std::shared_ptr<const std::string> body);
  // Messages found in the spool at start-up, with their state.
  void recovered(const std::vector<spool::Pending>& pending);
  // The deliverer's outcome of one attempt.
  void report(delivery::Report r);
  // A success notification (RFC 3461 §5.2.2; RFC 3464 action `delivered` or `relayed`) to
  // the sender of `queue_id`, about those of `recipients` that asked for one (NOTIFY
  // SUCCESS); nothing for a null sender or a notification. report() does this itself for
  // local deliveries. Outbound delivery calls it for remote recipients, kRelayed when the
  // server did not offer DSN (a DSN-aware server was passed NOTIFY and reports itself),
  // BEFORE reporting them delivered with report(): the spool forgets a message once every
  // recipient is finished. Best effort: a notification that cannot be stored is logged.
  void notifySuccess(const std::string& queue_id, std::vector<SuccessNotice> recipients,
                     DsnAction action = DsnAction::kRelayed);

  // Operator actions (postern queue ...). Not found: Status::notFound.
  Status retry(const std::string& queue_id);   // every pending recipient, now
  size_t retryAll();
  Status remove(const std::string& queue_id);  // drops it, no notification
  Status bounce(const std::string& queue_id);  // fails every pending recipient, notifies

  // Waits until nothing is in flight and nothing is due now (tests).
  void drain();
  QueueStats stats();
  // Messages owed delivery to at least one recipient (in flight or waiting).
  size_t size();
  // Messages waiting for a later attempt (not in flight, not due).
  size_t scheduled();

  // Microseconds since the epoch (system clock).
  static uint64_t nowUs();

 private:
  struct Entry {
    uint64_t due_us = 0;
    bool in_flight = false;
    int outstanding = 0;   // parts of the current attempt not yet reported
    std::shared_ptr<const std::string> body;   // dropped after the first attempt
  };
  void schedulerLoop();
  void schedule(const std::string& qid, uint64_t due_us, std::shared_ptr<const std::string> body);  // REQUIRES: mu_
  void dispatch(const std::string& qid, std::shared_ptr<const std::string> body);
  // One notification to the sender of a message: what happened to some of its recipients.
  struct Notice {
    DsnAction action = DsnAction::kFailed;
    std::vector<std::pair<uint32_t, DsnRecipient>> recipients;   // index -> status, diagnostic
  };
  // Stores the notifications (those the recipients' NOTIFY asks for; none for a null
  // sender or a notification) before `changes` are recorded. A failure or delay notice that
  // cannot be stored undoes its recipients' change (retried later / warned again).
  // `in_attempt`: part of a delivery attempt, which ends once the notifications are stored.
  void finishWithNotification(const spool::Pending& msg, std::vector<spool::StateChange> changes,
                              std::vector<Notice> notices, bool in_attempt);
  void finishAttempt(const std::string& qid);
  uint64_t backoffUs(uint32_t attempts) const;

  spool::Spool& spool_;
  const QueueOptions options_;
  LocalMailbox local_;
  NewEnvelope fresh_;
  delivery::Deliverer* deliverer_ = nullptr;
  delivery::RemoteDeliverer* remote_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::multimap<uint64_t, std::string> timers_;   // due -> queue id (stale ones skipped)
  size_t in_flight_ = 0;
  bool stopping_ = false;
  QueueStats stats_;
  std::thread thread_;
};

}  // namespace postern::queue
