// A milter client: one connection to one filter for one SMTP session (Postfix's model),
// driven by the session at the stages [[milter]] `stages` enables, with the per-milter
// timeouts. When the filter cannot be reached or breaks the protocol, every later call
// returns the milter's `default_action` (accept: the filter is skipped; tempfail: 451 4.7.1).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "milter/protocol.h"
#include "net/asio.h"
#include "util/ip.h"

namespace postern::milter {

// What the session does after a stage.
struct Decision {
  enum class Action : uint8_t { kContinue, kAccept, kReject, kTempFail, kDiscard } action = Action::kContinue;
  int code = 0;                  // kReject/kTempFail with a filter-given reply: 5xx/4xx
  std::string enhanced;          // "5.7.1"
  std::string text;              // reply text (the filter's, or a default)
  bool unavailable = false;      // the filter failed; this is its default_action
  std::string failure;           // set once, on the call where the filter failed: why (for the log)
};

// Changes the filter asked for at end of message.
struct HeaderEdit {
  enum class Kind : uint8_t { kAdd, kInsert, kChange } kind = Kind::kAdd;
  uint32_t index = 0;            // kInsert: position (0 = top); kChange: occurrence of name (1-based)
  std::string name, value;       // kChange with empty value: delete that field
};
struct Modifications {
  std::vector<HeaderEdit> headers;
  std::optional<std::string> body;        // replacement body (CRLF lines)
  std::optional<std::string> quarantine;  // reason; the message goes to Junk
  std::vector<std::string> add_rcpt, delete_rcpt;   // logged, not applied (see docs)
  std::optional<std::string> change_from;           // logged, not applied
  bool empty() const { return headers.empty() && !body && !quarantine; }
};

struct ConnectInfo {
  std::string client_hostname;   // verified PTR name, or "[a.b.c.d]"
  IpAddress client_ip;           // the real client (after PROXY)
  uint16_t client_port = 0;
  std::string helo;
  std::string queue_id;
  std::string our_hostname;      // macro j
  std::string auth_user;         // {auth_authen}, empty when not authenticated
  bool tls = false;
};

class Client {
 public:
  // Does not connect yet; open() does.
  Client(asio::any_io_executor ex, const config::Milter& cfg);
  ~Client();
  // Connects and negotiates (SMFIC_OPTNEG). On failure, later calls return default_action.
  net::awaitable<Decision> open();
  net::awaitable<Decision> connect(const ConnectInfo& info);
  net::awaitable<Decision> helo(const std::string& name);
  net::awaitable<Decision> mail(const std::string& from, const std::vector<std::string>& esmtp_args,
                                const std::string& queue_id);
  net::awaitable<Decision> rcpt(const std::string& to, const std::vector<std::string>& esmtp_args);
  // The whole message (header and body, CRLF): DATA, headers, EOH, body chunks, EOB; the
  // modifications collected until the final reply.
  net::awaitable<Decision> message(std::shared_ptr<const std::string> message, Modifications* mods);
  // Ends the transaction (RSET or after the message), keeping the connection for the next.
  net::awaitable<void> abort();
  net::awaitable<void> quit();
  // After STARTTLS or AUTH: the {auth_authen} and {tls_version} macros sent with MAIL.
  void setSession(std::string auth_user, std::string tls_version);
  // The filter failed (or the connection was closed): every call returns default_action.
  bool failed() const;
  const config::Milter& config() const { return cfg_; }

 private:
  struct Impl;
  const config::Milter& cfg_;
  std::unique_ptr<Impl> impl_;
};

// Applies header edits and a body replacement to `message` (pure; tests in
// milter_client_test.cc). Header indexes follow libmilter's smfi_chgheader/smfi_insheader.
std::string applyModifications(std::string_view message, const Modifications& mods);

}  // namespace postern::milter
