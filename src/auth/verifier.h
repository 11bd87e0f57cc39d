// Inbound sender authentication for one message, as [verify] configures it: SPF at MAIL FROM
// (so that `spf_reject` can refuse early), then DKIM, ARC and DMARC once the message is
// complete, summed up in one Authentication-Results field. Used by the SMTP session
// (smtp/server/verify.cc) and by `postern verify` (cli/verify_command.cc).
#pragma once

#include <asio/thread_pool.hpp>

#include <memory>
#include <optional>
#include <string>

#include "auth/dns.h"
#include "auth/results.h"
#include "config/config.h"
#include "net/asio.h"
#include "util/ip.h"

namespace postern::auth {

struct VerifyRequest {
  IpAddress ip;                                  // the real client (after PROXY)
  std::string helo;
  std::string mail_from;                         // empty: null reverse-path
  std::shared_ptr<const std::string> message;    // header + body, CRLF
  int64_t now = 0;                               // unix seconds
};

class Verifier {
 public:
  Verifier(const config::Verify& cfg, std::string receiver_hostname, Dns& dns, asio::thread_pool* cpu);

  // SPF for MAIL FROM (RFC 7208 §2.4), or for the HELO identity when MAIL FROM is empty (§2.3).
  net::awaitable<SpfOutcome> spf(IpAddress ip, std::string helo, std::string mail_from, int64_t now);
  // Everything enabled; `spf` when the session checked it at MAIL FROM already.
  net::awaitable<Report> verify(VerifyRequest req, std::optional<SpfOutcome> spf);
  // The Authentication-Results field for `r` (auth/results.h), with our authserv-id.
  std::string header(const Report& r) const;
  const config::Verify& config() const { return cfg_; }

 private:
  const config::Verify& cfg_;
  std::string receiver_;
  Dns& dns_;
  asio::thread_pool* cpu_;
};

// The message with every Authentication-Results field that claims `authserv_id` removed
// (RFC 8601 §5), and `field` put on top.
std::string withResults(std::string_view message, std::string_view authserv_id, std::string_view field);
// The same, in place: no copy of the message when its capacity has room for the field.
void putResults(std::string& message, std::string_view authserv_id, std::string_view field);

}  // namespace postern::auth
