// SMTP command syntax: RFC 5321 §4.1.1 (commands), §4.1.2 (paths and parameters),
// §4.1.1.3 (<Postmaster>), §C / §4.1.1.3 (source routes: accepted and ignored), extended by
// RFC 1870 (SIZE=), RFC 6152 (BODY=), RFC 6531 §3.4 (SMTPUTF8, UTF-8 addresses),
// RFC 4954 §4 and §5 (AUTH command, AUTH= on MAIL), RFC 3030 §2 (BDAT), RFC 3207 (STARTTLS),
// RFC 3461 §4 (DSN: RET= and ENVID= on MAIL, NOTIFY= and ORCPT= on RCPT).
//
// parseCommand() is pure syntax: it knows nothing about session state (sequence errors,
// which extensions were advertised, TLS) and never allocates. Reply codes follow RFC 5321
// §4.2 / §4.3.2 and RFC 3463 enhanced codes; the table is in tests/unit/smtp_command_test.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/proto/address.h"

namespace postern::smtp {

enum class Verb : uint8_t {
  kEhlo,
  kHelo,
  kMail,
  kRcpt,
  kData,
  kBdat,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStarttls,
  kAuth,
  kUnknown,  // only from verbFromText(); parseCommand() reports unknown verbs as a CommandError
};

// The verb's canonical spelling ("EHLO", ..., "UNKNOWN").
std::string_view verbName(Verb v);
// Case-insensitive lookup of a verb token; kUnknown when it is not one of ours.
Verb verbFromText(std::string_view token);

// One ESMTP parameter (RFC 5321 §4.1.2 esmtp-param = esmtp-keyword ["=" esmtp-value]).
struct Param {
  std::string_view keyword;  // as sent (compare with iequals)
  std::string_view value;    // empty if no '='
  bool has_value = false;
};

inline constexpr size_t kMaxParams = 16;
inline constexpr size_t kMaxSizeDigits = 20;       // RFC 1870 §3: size-value = 1*20DIGIT
inline constexpr size_t kMaxMechanismLength = 20;  // RFC 4422 §3.1: sasl-mech = 1*20mech-char

inline constexpr size_t kMaxEnvidLength = 100;   // RFC 3461 §4.4: ENVID value (as sent, xtext)
inline constexpr size_t kMaxOrcptLength = 500;   // RFC 3461 §4.2: ORCPT value (as sent)

// RFC 3461 §4.3 RET= values.
enum class DsnRetParam : uint8_t { kUnspecified, kFull, kHdrs };
// RFC 3461 §4.1 NOTIFY= bits (the same values as spool::kNotify*).
inline constexpr uint8_t kDsnNotifyNever = 1u << 0;
inline constexpr uint8_t kDsnNotifySuccess = 1u << 1;
inline constexpr uint8_t kDsnNotifyFailure = 1u << 2;
inline constexpr uint8_t kDsnNotifyDelay = 1u << 3;

// RFC 6152 BODY= values we understand (BINARYMIME needs RFC 3030 BINARYMIME, not offered).
enum class BodyType : uint8_t { kUnspecified, k7Bit, k8BitMime };

struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view verb_text;  // as sent (for logs)
  // Everything after the verb and the spaces that follow it, trailing spaces removed, raw.
  // EHLO/HELO: the domain or address literal (not validated: policy decides). AUTH: the
  // mechanism and optional initial response. VRFY/EXPN/NOOP/HELP: the string.
  std::string_view argument;

  // MAIL/RCPT: the address between < >, source route removed, as sent (quoted local part
  // keeps its quotes). Empty for the null reverse-path "<>".
  std::string_view path;
  bool null_path = false;
  bool postmaster = false;  // RCPT TO:<Postmaster> without a domain (§4.1.1.3); path = "Postmaster"
  Mailbox mailbox{};        // the parsed path; empty when null_path or postmaster
  bool utf8 = false;        // path has non-ASCII (RCPT: the session checks SMTPUTF8 was given on MAIL)
  std::array<Param, kMaxParams> params{};
  size_t param_count = 0;
  // MAIL parameters, decoded (they are also in params[]):
  bool has_size = false;
  uint64_t size = 0;  // SIZE=; saturates at UINT64_MAX for 20-digit values above it
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
  bool has_auth = false;
  std::string_view auth;  // AUTH= value, still xtext-encoded (RFC 3461 §4); "<>" when unknown
  DsnRetParam ret = DsnRetParam::kUnspecified;   // RET= (RFC 3461 §4.3)
  std::string_view envid;  // ENVID= value, still xtext-encoded (checked: decodes to printable ASCII)

  // RCPT parameters (RFC 3461 §4.1, §4.2), decoded:
  uint8_t notify = 0;      // kDsnNotify* bits; 0: NOTIFY not given
  std::string_view orcpt;  // ORCPT= value as sent, "addr-type;xtext"; empty: not given

  // BDAT (RFC 3030 §2):
  uint64_t chunk_size = 0;
  bool last = false;

  // AUTH (RFC 4954 §4):
  std::string_view mechanism;
  std::string_view initial_response;  // base64 or "=" (empty response)
  bool has_initial_response = false;
};

// What the server should reply. `enhanced` and `text` are string literals (static storage);
// `detail` points into the parsed line (the offending parameter keyword, when there is one).
struct CommandError {
  int code = 500;
  std::string_view enhanced;
  std::string_view text;
  std::string_view detail;
};

// Parses one command line (without CRLF). Verbs are case-insensitive; extra spaces after the
// verb, after "FROM:"/"TO:", between parameters and at the end are tolerated (as Postfix
// does); paths must be in angle brackets and follow RFC 5321 §4.1.2 strictly. MAIL checks its
// parameters (SIZE, BODY, SMTPUTF8, AUTH, RET, ENVID; others are 555) and requires SMTPUTF8
// for a non-ASCII reverse-path; RCPT accepts NOTIFY and ORCPT (others are 555).
// Views in the result point into `line`. Never allocates.
std::variant<Command, CommandError> parseCommand(std::string_view line);

// RFC 3461 §4 xtext decoding ("+2B" -> "+"); nullopt when `v` is not xtext or decodes to
// anything but printable US-ASCII (a CR or LF could forge header fields in a notification).
std::optional<std::string> decodeXtext(std::string_view v);
// ORCPT= value as stored and reported (RFC 3464 §2.3.1 Original-Recipient): "addr-type;"
// followed by the decoded address, e.g. "rfc822;user@example.org". nullopt when invalid.
std::optional<std::string> decodeOrcpt(std::string_view v);

}  // namespace postern::smtp
