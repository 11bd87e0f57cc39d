// DKIM message preparation, RFC 6376: the header/body split a signer works on, the
// "simple" and "relaxed" canonicalizations (§3.4), the choice of header fields to sign
// (§5.4, with From oversigned) and the header hash input (§3.7). Pure: bytes in, bytes out,
// no keys, no clock.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::dkim {

// Past these a message is not signed (it is still accepted): limits on the work a
// header section can cause, far above what real mail carries.
inline constexpr size_t kMaxHeaderFields = 1000;
inline constexpr size_t kMaxHeaderFieldBytes = 64 * 1024;

enum class Canon { kSimple, kRelaxed };

// One header field as written in the message.
struct HeaderField {
  std::string_view name;  // the field name as written (no surrounding WSP)
  std::string_view raw;   // the whole field, continuation lines included, without the final CRLF
};

struct MessageParts {
  std::vector<HeaderField> fields;  // in message order, top first
  std::string_view body;            // everything after the empty line; empty when there is none
};

// Splits `message` (lines end in CRLF) into its header fields and its body. Only looks at
// the bytes of `message`; the views point into it, so it must outlive the result. A line
// in the header section that is neither a field nor a continuation is an error (the
// message is then not signed: a verifier would split it differently).
Result<MessageParts> splitMessage(std::string_view message);

// §3.4.1 / §3.4.2: the field as it enters the header hash, with its CRLF.
std::string canonicalHeader(const HeaderField& f, Canon c);

// §3.4.3 / §3.4.4, streaming: the body in pieces of any size goes in through feed(), and
// the canonical form comes out through `sink` (trailing empty lines held back until
// something follows them). finish() ends the body: a last line without CRLF gets one, and
// an empty simple body becomes a single CRLF.
class BodyCanonicalizer {
 public:
  using Sink = std::function<void(std::string_view)>;
  BodyCanonicalizer(Canon c, Sink sink) : canon_(c), sink_(std::move(sink)) {}
  void feed(std::string_view data);
  void finish();

 private:
  void line(std::string_view content);

  Canon canon_;
  Sink sink_;
  std::string partial_;     // bytes of a line whose CRLF has not arrived yet
  size_t empty_lines_ = 0;  // empty lines held back (dropped if the body ends here)
  bool wrote_ = false;
};

// The whole canonical body at once (tests and small messages).
std::string canonicalBody(std::string_view body, Canon c);

// The header fields a signature covers (§5.4): those of kSignedHeaders present in the
// message, each name listed once per instance, and From listed once more than present so
// that a From added later breaks the signature. Names are written as in kSignedHeaders.
extern const std::vector<std::string_view> kSignedHeaders;
std::vector<std::string> chooseSignedHeaders(const MessageParts& m);

// §3.7 / §5.4.2: the canonical fields named by `h`, in that order; a name listed several
// times takes the instances from the bottom of the header up; a name with no instance
// left contributes nothing.
std::string headerHashInput(const MessageParts& m, const std::vector<std::string>& h, Canon c);

// The domain of the single From: mailbox, lower-cased; nullopt when there is no From:, more
// than one, or no domain that looks like a host name.
std::optional<std::string> fromDomain(const MessageParts& m);

}  // namespace postern::dkim
