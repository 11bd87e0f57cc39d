// One SMTP session (RFC 5321) as a coroutine: reads commands, answers them, receives
// messages and hands them to the spool. Syntax lives in smtp/proto (pure); this is
// behaviour, one file per verb group: session.cc (loop, HELO/EHLO, RSET, NOOP, QUIT,
// VRFY, HELP), mail.cc (MAIL, RCPT), data.cc (DATA, BDAT, commit), auth.cc (AUTH),
// starttls.cc (STARTTLS).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/spf.h"
#include "directory/directory.h"
#include "milter/client.h"
#include "net/stream.h"
#include "smtp/proto/command.h"
#include "smtp/proto/data_scanner.h"
#include "smtp/proto/line.h"
#include "smtp/server/context.h"
#include "smtp/server/rejections.h"
#include "protect/dnsbl.h"
#include "spool/record.h"

namespace postern::smtp {

inline constexpr size_t kReadChunk = 4096;
inline constexpr size_t kSpoolChunk = 1024 * 1024;      // body bytes held in memory before spilling
inline constexpr size_t kMaxAuthLine = 12288;           // RFC 4954 §4: at least 12288 octets
inline constexpr std::chrono::seconds kFinalWriteGrace{10};
// How long past its own timeout a DNSBL verdict is awaited (the lookup always answers by then).
inline constexpr std::chrono::seconds kDnsblBackstop{5};

class Session {
 public:
  Session(ServerContext& ctx, net::Stream& stream, ConnectionInfo info);
  // Bytes already read from the connection that belong to this session.
  void preload(std::string bytes) { in_ = std::move(bytes); }
  // This listener does not expect a PROXY header here: if the client's first bytes are
  // one, log the misconfiguration and close instead of answering them as commands.
  void guardAgainstProxyHeader() { guard_proxy_ = true; }
  net::awaitable<void> run();
  // Waiting for a command outside a transaction (shutdown may interrupt it).
  bool idle() const { return waiting_command_ && !in_mail_; }

 private:
  enum class ReadResult { kOk, kEof, kTimeout, kInterrupted, kError };

  // I/O
  using TimePoint = std::chrono::steady_clock::time_point;
  // Reads more input; the deadline is absolute, so a client dripping bytes cannot stretch it.
  net::awaitable<ReadResult> readMore(TimePoint deadline);
  // The deadline for the next DATA/BDAT read: idle limit and whole-transaction limit.
  TimePoint dataDeadline() const;
  net::awaitable<bool> flush();
  void reply(int code, std::string_view enhanced, std::string_view text);
  void replyLines(int code, std::string_view enhanced, const std::vector<std::string>& lines);
  // Counts a client error; true when the session must end (too many).
  bool countError();
  // guard_proxy_: are the first bytes in in_ a PROXY header (logged; the session ends),
  // possibly one (kWait: read more first), or not (the guard is dropped)?
  enum class HeaderCheck { kClear, kWait, kHeader };
  HeaderCheck checkProxyHeader();
  // guard_proxy_, before the greeting: true when the bytes already waiting in the socket
  // start a PROXY header (logged; session ends). Reads nothing.
  bool proxyHeaderWaiting();
  void logProxyHeader(bool v1);
  void reject(const Rejection& r, int code, std::string_view enhanced, std::string_view text);
  // Reads one command line within `timeout` in total; nullopt when the session must end.
  // A refused line (over-long, bare CR/LF, NUL) is dropped through its CRLF. Without
  // `refused` it is answered by rejectLine() and the next line is read; with `refused`
  // nothing is answered: *refused gets the reason and an empty line is returned, so that
  // a multi-line exchange (AUTH) can end itself with its own reply.
  net::awaitable<std::optional<std::string>> readLine(size_t max, std::chrono::milliseconds timeout,
                                                      LineStatus* refused = nullptr);
  // The reply, counter and log line for a command line refused by nextLine().
  void rejectLine(LineStatus why);

  // Verbs
  net::awaitable<bool> earlyTalker();
  net::awaitable<bool> dispatch(const Command& cmd);
  void onHelo(const Command& cmd, bool extended);
  void onMail(const Command& cmd);
  net::awaitable<void> onRcpt(const Command& cmd);
  // Greylisting (greylist.cc): true when the recipient was deferred (451 sent).
  bool greylisted(const Command& cmd, const std::string& rcpt);
  // RCPT to an SRS address of ours (a bounce coming back): accepted for the original sender
  // when valid and fresh, else refused with the reason. True when a reply was sent; false
  // when the address is not an SRS address of ours (ordinary resolution follows).
  bool srsRecipient(const Command& cmd, const std::string& orcpt);
  void onRcptChecked(const Command& cmd);
  bool refuseBadMailboxName(const Command& cmd, const std::string& rcpt, const directory::Directory::Resolution& res);
  // 452 4.2.2 when a local mailbox of `res` is full or the declared SIZE would not fit
  // (quota.cc). True when a reply was sent.
  bool refuseOverQuota(const Command& cmd, const directory::Directory::Resolution& res);
  // 552 5.2.2 at the end of DATA/BDAT when the message fits no recipient's mailbox: every
  // recipient is a local mailbox whose quota it would exceed (quota.cc). True when replied.
  bool refuseAllOverQuota();
  net::awaitable<bool> onData(const Command& cmd);
  net::awaitable<bool> onBdat(const Command& cmd);
  net::awaitable<bool> onAuth(const Command& cmd);
  net::awaitable<bool> onStarttls(const Command& cmd);
  void resetTransaction();
  // DNSBL: started at connect on the smtp listener, awaited at the first RCPT.
  void startDnsbl();
  net::awaitable<std::optional<protect::DnsblVerdict>> dnsblVerdict();

  // Message assembly and acceptance
  void beginBody();
  net::awaitable<Status> spillBody();
  void replyStorageError(const Status& s);
  net::awaitable<bool> commitMessage();
  // DKIM (dkim/key_store.h): mail from an authenticated user is held in memory, not spilled,
  // so that its signature can go on top before it is spooled.
  struct Signed {
    std::string status;   // "signed" | "failed" | "" (no key for the From: domain)
    std::string domain, selector;
  };
  bool holdForSigning() const;
  net::awaitable<Signed> signBody();
  // Sender authentication (verify.cc): SPF starts at MAIL FROM, runs while the client sends
  // RCPT, and is awaited at the first RCPT when [verify] spf_reject may refuse, else at the
  // end of the message. Then DKIM/ARC/DMARC, the Authentication-Results field, milters
  // (milter.cc) and the Junk decision, on the whole message, before it is committed.
  bool verifying() const;
  void startSpf();
  net::awaitable<std::optional<auth::SpfOutcome>> spfOutcome();
  // True when the recipient was refused because of the SPF result (reply sent).
  net::awaitable<bool> refusedBySpf();
  // The message is complete (body_ plus spilled chunks): verify, filter and rewrite it.
  // False when it was refused or dropped (the reply is sent); true to commit body_ (with
  // whole_ set when it replaces spilled chunks).
  net::awaitable<bool> prepareMessage();
  // Milters at end of message (milter.cc): edits `message` in place; false when refused or
  // discarded (the reply is sent).
  net::awaitable<bool> milterMessage(std::string& message);
  std::string receivedHeader() const;

  // Milters (milter.cc): one client per applicable [[milter]], opened before the greeting.
  // The stage functions run after the command's own checks passed (its reply, at out_[mark],
  // starts with 2); a filter's refusal replaces that reply.
  net::awaitable<void> milterConnect();
  net::awaitable<void> milterHelo(size_t mark);
  net::awaitable<void> milterMail(const Command& cmd, size_t mark);
  net::awaitable<void> milterRcpt(const Command& cmd, size_t mark, size_t recipients, size_t displayed);
  net::awaitable<void> milterAbort();
  net::awaitable<void> milterQuit();
  void milterSessionChanged();   // AUTH or STARTTLS: the macros sent with MAIL
  void milterLog(const milter::Client& c, std::string_view stage, const milter::Decision& d);
  void milterRefuse(const milter::Decision& d, bool message);
  bool repliedOk(size_t mark) const;
  std::string protocolName() const;
  bool tlsAvailable() const;
  bool authRequired() const;

  ServerContext& ctx_;
  net::Stream& stream_;
  ConnectionInfo info_;
  std::string in_;      // bytes read, not yet consumed
  std::string out_;     // replies not yet written
  std::chrono::milliseconds command_timeout_;
  unsigned errors_ = 0;
  bool quit_ = false;
  bool waiting_command_ = false;
  bool guard_proxy_ = false;

  // Session state
  std::string helo_;
  bool esmtp_ = false;
  std::string user_;    // after AUTH
  unsigned auth_failures_ = 0;
  std::shared_ptr<const directory::Directory> dir_;   // snapshot for this transaction

  // A lookup started early (DNSBL at connect, SPF at MAIL FROM) and awaited later: the
  // result lands here on this connection's executor and cancels `wake`.
  template <class T>
  struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : wake(ex) {}
    bool done = false;
    T value;
    asio::steady_timer wake;
  };
  using DnsblPending = Pending<protect::DnsblVerdict>;
  std::shared_ptr<DnsblPending> dnsbl_;

  std::vector<std::unique_ptr<milter::Client>> milters_;
  std::optional<milter::Decision> milter_connect_reply_;   // a refusal at connect, given at MAIL
  bool milter_discard_ = false;    // a filter said discard during this transaction

  // Transaction state
  bool in_mail_ = false;
  spool::Envelope env_;
  bool smtputf8_ = false;
  uint64_t declared_size_ = 0;
  unsigned rcpt_attempts_ = 0;
  std::vector<std::string> rcpt_display_;
  bool bdat_mode_ = false;
  std::optional<TextChecker> bdat_checker_;   // bare CR/LF state across BDAT chunks
  bool body_started_ = false;
  bool body_failed_ = false;        // BDAT chunks after an error are read and dropped
  std::string body_;                // the part not yet handed to the spool
  std::shared_ptr<const std::string> pending_tail_;   // while a commit is in flight
  uint64_t body_size_ = 0;          // all body bytes, spilled or not
  bool spilled_ = false;
  bool whole_ = false;              // body_ is the whole message and replaces the spilled chunks
  using SpfPending = Pending<auth::SpfOutcome>;
  std::shared_ptr<SpfPending> spf_;
  std::string verify_summary_;      // "spf=pass dkim=pass dmarc=pass arc=none" for smtp.accepted
  std::chrono::steady_clock::time_point transaction_start_;
};

}  // namespace postern::smtp
