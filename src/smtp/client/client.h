// The one SMTP client (outbound delivery; later `postern doctor`): RFC 5321 as a client, with
// ESMTP PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN
// parameters passed on (RFC 3461), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954, 4616) and
// DANE authentication of the server (RFC 7672 §3, see dane.h).
//
// One Connection is one TCP (or TLS) session to one server; it can carry many transactions
// (RSET between them is not needed after a completed DATA, RFC 5321 §4.1.4). Every read and
// write has a deadline (RFC 5321 §4.5.3.2 timeouts, scaled down, in ClientTimeouts).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns/message.h"
#include "net/asio.h"
#include "net/stream.h"
#include "smtp/client/reply_parser.h"
#include "util/ip.h"

namespace postern::smtp::client {

using net::tcp;

enum class TlsMode : uint8_t {
  kNone,       // never STARTTLS
  kMay,        // STARTTLS when offered; a failed handshake is retried in plaintext on a new connection by the caller
  kEncrypt,    // STARTTLS required (no certificate check)
  kVerify,     // STARTTLS required and the certificate must verify for `tls_name` (relays, MTA-STS)
  kImplicit,   // TLS from the first byte (port 465 relays); certificate verified as kVerify
};

struct ClientTimeouts {
  std::chrono::milliseconds connect{30'000};
  std::chrono::milliseconds greeting{120'000};   // RFC 5321 §4.5.3.2.1: 5 min; shorter here
  std::chrono::milliseconds command{120'000};    // EHLO, MAIL, RCPT, RSET, STARTTLS, AUTH
  std::chrono::milliseconds data_block{180'000}; // each write of the body
  std::chrono::milliseconds data_end{300'000};   // RFC 5321 §4.5.3.2.6: 10 min; shorter here
};

struct ClientOptions {
  std::string helo_name;        // our hostname for EHLO
  TlsMode tls = TlsMode::kMay;
  SSL_CTX* tls_ctx = nullptr;   // client context (made with makeClientContext); needed unless kNone
  std::string tls_name;         // SNI and the name the certificate must match (kVerify/kImplicit)
  std::string auth_user;        // AUTH when non-empty (only over TLS unless allow_plain_auth)
  std::string auth_password;
  bool allow_plain_auth = false;
  ClientTimeouts timeouts;
  // DANE (RFC 7672 §3): when non-empty, STARTTLS is required whatever `tls` says, and the
  // server's certificate must match one of these records (OpenSSL's DANE verification) instead
  // of the WebPKI; a mismatch is a kTls failure that says "DANE". `tls_name` is the TLSA base
  // domain (the MX host name, RFC 7672 §2.2.3); `dane_names` are more names a DANE-TA(2)
  // certificate may carry (RFC 7672 §3.2.3). DANE-EE(3) ignores names and validity dates
  // (RFC 7672 §3.1.1). REQUIRES: only usable records (usableTlsa in dane.h); tls_ctx made by
  // makeClientContext (DANE enabled on it).
  std::vector<dns::TlsaData> dane_tlsa;
  std::vector<std::string> dane_names;
};

// A client SSL_CTX: TLS 1.2+, system trust store plus `ca_file` (may be empty), no session
// tickets kept across hosts, DANE enabled (used only by connections given TLSA records).
// Null on failure with `error` set.
SSL_CTX* makeClientContext(const std::string& ca_file, std::string& error);

// Why a connection-level step failed, for the log's `dsn=` and the queue's decision.
struct Failure {
  enum Kind : uint8_t {
    kConnect,       // TCP connect failed or timed out
    kGreeting,      // no 220, or 4xx/5xx greeting
    kProtocol,      // garbage, a line too long, the server closed mid-reply
    kTimeout,       // a deadline passed
    kTls,           // STARTTLS refused when required, or the handshake/verification failed
    kAuth,          // AUTH refused (code in reply)
    kRejected,      // a command of the session (EHLO/HELO) was refused
  } kind;
  std::optional<Reply> reply;   // the server's reply when there was one
  std::string detail;           // "connection refused", "certificate verify failed: ...", ...
  bool permanent() const { return reply && reply->permanent() && kind != kTls; }
  std::string text() const;     // one line for logs and bounces
};

struct Recipient {
  std::string address;   // the RCPT TO path (no angle brackets)
  std::string notify;    // RFC 3461 NOTIFY value ("SUCCESS,FAILURE"), empty: not sent
  std::string orcpt;     // RFC 3461 ORCPT value ("rfc822;user@example.org"), empty: not sent
};

struct Transaction {
  std::string mail_from;              // empty: the null reverse-path "<>"
  std::vector<Recipient> recipients;
  const std::string* body = nullptr;  // the message as stored: CRLF lines, not dot-stuffed
  bool eightbit = false;              // send BODY=8BITMIME when the server offers it
  bool smtputf8 = false;              // the envelope needs SMTPUTF8: fail with 553/5.6.7 kind if not offered
  std::string ret;                    // RFC 3461 RET (FULL|HDRS), empty: not sent
  std::string envid;                  // RFC 3461 ENVID (raw, xtext-encoded here), empty: not sent
};

// Each recipient's outcome: its `rcpt` reply when that is negative, else `data` when present
// (the final reply, or the refusal of the DATA command), else `failure`.
struct TransactionResult {
  // Set when the transaction as a whole failed: the connection broke or timed out (kTimeout,
  // kProtocol; `rcpt` may then be shorter than the recipient list), MAIL was refused
  // (kRejected with its reply), a 421 closed the session, or the transaction was refused
  // locally (kRejected with a synthesized reply also copied to `mail` and every `rcpt`:
  // 552 5.3.4 over the server's SIZE, 553 5.6.7 SMTPUTF8 not offered). Not set when only
  // recipients were refused or the final reply is negative. The connection is unusable
  // afterwards unless `reusable` says otherwise.
  std::optional<Failure> failure;
  std::optional<Reply> mail;          // MAIL FROM reply
  std::vector<Reply> rcpt;            // one per recipient, in order (empty when MAIL failed)
  std::optional<Reply> data;          // final reply after the body (absent when no RCPT passed)
  bool reusable = false;              // another transaction may follow on this connection
};

class Connection {
 public:
  // Connects, reads the greeting, EHLO (HELO when EHLO gets 5xx), STARTTLS per the mode
  // (then EHLO again), AUTH when configured. Runs on the caller's executor.
  static net::awaitable<std::pair<std::unique_ptr<Connection>, std::optional<Failure>>> open(
      net::tcp::endpoint server, const ClientOptions& options);
  ~Connection();

  // One transaction: MAIL, RCPT..., DATA, body, final reply; pipelined when the server has
  // PIPELINING. A recipient refused at RCPT gets its reply; if none is accepted, no DATA is
  // sent (RSET instead, keeping the connection reusable).
  net::awaitable<TransactionResult> send(const Transaction& t);
  // RSET (before reusing a connection whose last transaction failed midway). False: drop it.
  net::awaitable<bool> reset();
  // QUIT and close; never fails.
  net::awaitable<void> quit();

  const Capabilities& capabilities() const { return caps_; }
  bool tls() const;                     // STARTTLS or implicit TLS is in effect
  const net::TlsInfo& tlsInfo() const;  // version, cipher
  bool verified() const { return verified_; }   // the certificate verified for tls_name (or by DANE)
  const std::string& dane() const { return dane_; }   // "dane-ee" / "dane-ta" when DANE verified it, else ""
  std::string peerName() const;         // "mx.example.org[192.0.2.1]:25" for logs (set by caller)
  void setPeerName(std::string n) { peer_name_ = std::move(n); }

 private:
  Connection() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Capabilities caps_;
  bool verified_ = false;
  std::string dane_;
  std::string peer_name_;
};

// Dot-stuffs `body` (RFC 5321 §4.5.2), ensures it ends with CRLF, and appends ".\r\n".
std::string dotStuff(const std::string& body);

}  // namespace postern::smtp::client
