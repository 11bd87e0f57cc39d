// Reading SMTP replies as a client: RFC 5321 §4.2 (Reply-line = *( Reply-code "-" [ textstring ]
// CRLF ) Reply-code [ SP textstring ] CRLF; every line of a multi-line reply carries the same
// code), RFC 2034 §4 / RFC 3463 (enhanced status code "x.y.z" at the start of the text), and
// EHLO keywords (RFC 5321 §4.1.1.1, §4.1.2 ehlo-line). Pure: bytes in, replies out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::smtp::client {

// Tolerant limits (servers send longer lines than §4.5.3.1.5's 512 octets).
inline constexpr size_t kMaxClientReplyLine = 4096;   // CRLF included
inline constexpr size_t kMaxClientReplyLines = 200;

struct Reply {
  int code = 0;                     // 200..599
  std::string enhanced;             // "5.1.1" when the first line has one, else empty
  std::vector<std::string> lines;   // text after "250-"/"250 ", enhanced code kept
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "550 5.1.1 no such user" (all lines joined with " / "), for logs and bounces.
  std::string text() const;
};

class ReplyParser {
 public:
  enum class State : uint8_t { kNeedMore, kDone, kError };
  struct Step {
    State state = State::kNeedMore;
    size_t consumed = 0;   // bytes of `in` used (all of a need-more input; up to the end of the reply when done)
    Reply reply;           // kDone
    std::string error;     // kError: what was wrong ("not a reply line: ...", "line too long", ...)
  };
  // Feeds bytes; partial lines are kept inside the parser between calls. After kDone the
  // parser is ready for the next reply (call again with the unconsumed rest). After kError
  // the connection must be dropped. Bare LF line ends are accepted.
  Step feed(std::string_view in);

 private:
  std::string partial_;
  Reply building_;
};

// The ESMTP extensions a server announced in its EHLO reply.
struct Capabilities {
  bool esmtp = false;              // EHLO was answered with 250 (else HELO was used)
  bool pipelining = false;         // RFC 2920
  bool starttls = false;           // RFC 3207
  bool eightbitmime = false;       // RFC 6152
  bool smtputf8 = false;           // RFC 6531
  bool chunking = false;           // RFC 3030
  bool dsn = false;                // RFC 3461
  bool enhanced_status = false;    // RFC 2034
  std::optional<uint64_t> size;    // RFC 1870: SIZE with a limit (0: no fixed limit)
  std::vector<std::string> auth;   // RFC 4954 mechanisms, upper case
};
Capabilities parseEhlo(const Reply& ehlo_reply);

// A MAIL/RCPT argument value as an RFC 3461 xtext (§4): '+', '=', and characters outside
// '!'..'~' become "+HH".
std::string xtext(std::string_view s);

}  // namespace postern::smtp::client
