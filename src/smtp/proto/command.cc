// RFC 5321 §4.1.1 / §4.1.2 command parsing with RFC 1870, 6152, 6531, 4954, 3030, 3207 and 3461.
#include "smtp/proto/command.h"

#include <cstdint>
#include <optional>

#include "util/strings.h"  // parseDecimal

namespace postern::smtp {
namespace {

struct VerbEntry {
  std::string_view name;
  Verb verb;
};

constexpr std::array<VerbEntry, 14> kVerbs{{
    {"EHLO", Verb::kEhlo},
    {"HELO", Verb::kHelo},
    {"MAIL", Verb::kMail},
    {"RCPT", Verb::kRcpt},
    {"DATA", Verb::kData},
    {"BDAT", Verb::kBdat},
    {"RSET", Verb::kRset},
    {"NOOP", Verb::kNoop},
    {"QUIT", Verb::kQuit},
    {"VRFY", Verb::kVrfy},
    {"EXPN", Verb::kExpn},
    {"HELP", Verb::kHelp},
    {"STARTTLS", Verb::kStarttls},
    {"AUTH", Verb::kAuth},
}};

// Replies (RFC 5321 §4.2.2 codes, RFC 3463 enhanced codes: X.5.2 syntax error / command
// unrecognized, X.5.4 invalid arguments, X.1.7 bad sender address syntax, X.1.3 bad
// destination address syntax, X.6.7 non-ASCII address not permitted (RFC 6531 §3.7.4.1 area)).
constexpr CommandError kEmptyLine{500, "5.5.2", "Syntax error, command unrecognized", {}};
constexpr CommandError kUnknownVerb{500, "5.5.2", "Command unrecognized", {}};
constexpr CommandError kControlChar{501, "5.5.2", "Syntax error: control character in command", {}};
constexpr CommandError kEhloSyntax{501, "5.5.4", "Syntax: EHLO hostname", {}};
constexpr CommandError kHeloSyntax{501, "5.5.4", "Syntax: HELO hostname", {}};
constexpr CommandError kMailSyntax{501, "5.5.4", "Syntax: MAIL FROM:<address>", {}};
constexpr CommandError kRcptSyntax{501, "5.5.4", "Syntax: RCPT TO:<address>", {}};
constexpr CommandError kBadSender{501, "5.1.7", "Bad sender address syntax", {}};
constexpr CommandError kBadRecipient{501, "5.1.3", "Bad recipient address syntax", {}};
constexpr CommandError kParamSyntax{501, "5.5.4", "Bad parameter syntax", {}};
constexpr CommandError kDuplicateParam{501, "5.5.4", "Duplicate parameter", {}};
constexpr CommandError kTooManyParams{501, "5.5.4", "Too many parameters", {}};
constexpr CommandError kUnknownMailParam{555, "5.5.4", "Unsupported MAIL parameter", {}};
constexpr CommandError kUnknownRcptParam{555, "5.5.4", "Unsupported RCPT parameter", {}};
constexpr CommandError kBadSize{501, "5.5.4", "Bad SIZE parameter", {}};
constexpr CommandError kBadBody{501, "5.5.4", "BODY must be 7BIT or 8BITMIME", {}};
constexpr CommandError kBadSmtputf8{501, "5.5.4", "SMTPUTF8 takes no value", {}};
constexpr CommandError kBadAuthParam{501, "5.5.4", "Bad AUTH parameter", {}};
// RFC 3461 §4 (DSN parameters).
constexpr CommandError kBadRet{501, "5.5.4", "Bad RET parameter: must be RET=FULL or RET=HDRS", {}};
constexpr CommandError kBadEnvid{501, "5.5.4", "Bad ENVID parameter: must be xtext of printable US-ASCII", {}};
constexpr CommandError kLongEnvid{501, "5.5.4", "Bad ENVID parameter: longer than 100 characters", {}};
constexpr CommandError kBadNotify{501, "5.5.4",
                                  "Bad NOTIFY parameter: must be NEVER or a list of SUCCESS, FAILURE, DELAY", {}};
constexpr CommandError kNotifyNeverMixed{501, "5.5.4", "Bad NOTIFY parameter: NEVER cannot be combined with other values",
                                         {}};
constexpr CommandError kNotifyRepeated{501, "5.5.4", "Bad NOTIFY parameter: a value is listed twice", {}};
constexpr CommandError kBadOrcpt{501, "5.5.4", "Bad ORCPT parameter: must be addr-type;xtext (e.g. rfc822;user@example.org)",
                                 {}};
constexpr CommandError kLongOrcpt{501, "5.5.4", "Bad ORCPT parameter: longer than 500 characters", {}};
constexpr CommandError kNeedSmtputf8{553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter", {}};
constexpr CommandError kDataSyntax{501, "5.5.4", "Syntax: DATA", {}};
constexpr CommandError kRsetSyntax{501, "5.5.4", "Syntax: RSET", {}};
constexpr CommandError kQuitSyntax{501, "5.5.4", "Syntax: QUIT", {}};
constexpr CommandError kStarttlsSyntax{501, "5.5.4", "Syntax: STARTTLS", {}};
constexpr CommandError kVrfySyntax{501, "5.5.4", "Syntax: VRFY address", {}};
constexpr CommandError kExpnSyntax{501, "5.5.4", "Syntax: EXPN list", {}};
constexpr CommandError kBdatSyntax{501, "5.5.4", "Syntax: BDAT chunk-size [LAST]", {}};
constexpr CommandError kAuthSyntax{501, "5.5.4", "Syntax: AUTH mechanism [initial-response]", {}};
constexpr CommandError kAuthResponse{501, "5.5.2", "Initial response is not base64", {}};

// ASCII-only case-insensitive comparison. Protocol keywords are ASCII (RFC 5321 §2.4), and
// unlike util's iequals (std::tolower) this does not depend on the C locale and is inlined:
// it is the hot spot of command parsing.
char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  return true;
}

bool isAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isControl(unsigned char c) {
  return c < 0x20 || c == 0x7F;
}

CommandError withDetail(CommandError e, std::string_view detail) {
  e.detail = detail;
  return e;
}

std::string_view stripSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Splits off the next space-separated token of `s` (leading spaces skipped).
std::string_view nextToken(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  size_t sp = s.find(' ');
  std::string_view token = s.substr(0, sp);
  s.remove_prefix(sp == std::string_view::npos ? s.size() : sp);
  return token;
}

// RFC 5321 §4.1.2 esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
bool isEsmtpKeyword(std::string_view k) {
  if (k.empty() || !isAlnum(static_cast<unsigned char>(k.front()))) return false;
  for (unsigned char c : k)
    if (!isAlnum(c) && c != '-') return false;
  return true;
}

// RFC 5321 §4.1.2 esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 §3.3 adds UTF8-non-ascii.
bool isEsmtpValue(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c == '=' || c <= 32 || c == 127) return false;  // bytes >= 0x80: checked as UTF-8 below
  return isValidUtf8(v);
}

bool isHex(char h) { return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F') || (h >= 'a' && h <= 'f'); }
int hexValue(char h) {
  if (h >= '0' && h <= '9') return h - '0';
  if (h >= 'a' && h <= 'f') return h - 'a' + 10;
  return h - 'A' + 10;
}

// RFC 3461 §4 xtext = *( xchar / hexchar ), hexchar = "+" 2HEXDIG (RFC 4954 §5 AUTH=).
bool isXtext(std::string_view v) {
  for (size_t i = 0; i < v.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c == '+') {
      if (i + 2 >= v.size() || !isHex(v[i + 1]) || !isHex(v[i + 2])) return false;
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return false;
    }
  }
  return !v.empty();
}

// xtext (above) whose hexchars decode to printable US-ASCII (space included): what DSN
// parameters may carry, since they are copied into notification header fields.
bool isPrintableXtext(std::string_view v) {
  if (!isXtext(v)) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '+') continue;
    int c = hexValue(v[i + 1]) * 16 + hexValue(v[i + 2]);
    if (c < 0x20 || c > 0x7E) return false;
    i += 2;
  }
  return true;
}

// RFC 5322 §3.2.3 atext: the characters of an atom (RFC 3461 §4.2 addr-type = atom).
bool isAtext(unsigned char c) {
  if (isAlnum(c)) return true;
  for (char a : std::string_view("!#$%&'*+-/=?^_`{|}~"))
    if (c == static_cast<unsigned char>(a)) return true;
  return false;
}

// RFC 3461 §4.2 original-recipient-address = addr-type ";" xtext.
bool isOrcptValue(std::string_view v) {
  size_t semi = v.find(';');
  if (semi == 0 || semi == std::string_view::npos) return false;
  for (unsigned char c : v.substr(0, semi))
    if (!isAtext(c)) return false;
  return isPrintableXtext(v.substr(semi + 1));
}

// RFC 3461 §4.1 NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ).
const CommandError* parseNotify(std::string_view v, uint8_t& bits) {
  bits = 0;
  if (v.empty()) return &kBadNotify;
  for (;;) {
    size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    uint8_t bit = 0;
    if (ieq(item, "NEVER")) bit = kDsnNotifyNever;
    else if (ieq(item, "SUCCESS")) bit = kDsnNotifySuccess;
    else if (ieq(item, "FAILURE")) bit = kDsnNotifyFailure;
    else if (ieq(item, "DELAY")) bit = kDsnNotifyDelay;
    else return &kBadNotify;
    if (bits & bit) return &kNotifyRepeated;
    bits |= bit;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if ((bits & kDsnNotifyNever) && bits != kDsnNotifyNever) return &kNotifyNeverMixed;
  return nullptr;
}

// RFC 1870 §3 size-value = 1*20DIGIT; values above UINT64_MAX saturate (the caller's
// maximum makes them a 552, not a syntax error).
bool parseSizeValue(std::string_view v, uint64_t& out) {
  if (v.empty() || v.size() > kMaxSizeDigits) return false;
  uint64_t n = 0;
  bool saturated = false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10)
      saturated = true;
    else
      n = n * 10 + d;
  }
  out = saturated ? UINT64_MAX : n;
  return true;
}

// Index just past a Quoted-string that starts at s[i] == '"' (quoted-pairs skipped), or npos
// if it does not close. Syntax is checked later by parseMailbox.
size_t skipQuoted(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

struct PathParse {
  bool ok = false;  // brackets found and well placed (else: command syntax error)
  bool null_path = false;
  bool route_ok = true;      // the source route's domains are valid
  std::string_view mailbox;  // between the route and '>'
  std::string_view rest;     // after '>'
};

// RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">", A-d-l = At-domain *( "," At-domain ),
// At-domain = "@" Domain. `s` starts at '<'.
PathParse splitPath(std::string_view s) {
  PathParse r;
  if (s.empty() || s.front() != '<') return r;
  size_t i = 1;
  if (i < s.size() && s[i] == '>') {
    r.ok = true;
    r.null_path = true;
    r.rest = s.substr(i + 1);
    return r;
  }
  if (i < s.size() && s[i] == '@') {  // source route, RFC 5321 §C: accept and ignore
    for (;;) {
      if (i >= s.size() || s[i] != '@') {
        r.route_ok = false;
        break;
      }
      size_t start = ++i;
      while (i < s.size() && s[i] != ',' && s[i] != ':' && s[i] != '>') ++i;
      if (!isValidDomain(s.substr(start, i - start))) r.route_ok = false;
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == ':')
        ++i;
      else
        r.route_ok = false;
      break;
    }
  }
  size_t start = i;
  if (i < s.size() && s[i] == '"') {
    i = skipQuoted(s, i);
    if (i == std::string_view::npos) return r;
  }
  size_t gt = s.find('>', i);
  if (gt == std::string_view::npos) return r;
  r.ok = true;
  r.mailbox = s.substr(start, gt - start);
  r.rest = s.substr(gt + 1);
  return r;
}

// Splits the parameters after a path into cmd.params (syntax, count and duplicates only).
// `rest` is what follows '>'; it must be empty or start with a space.
const CommandError* splitParams(std::string_view rest, Command& cmd, const CommandError& syntax) {
  if (rest.empty()) return nullptr;
  if (rest.front() != ' ') return &syntax;
  for (;;) {
    std::string_view token = nextToken(rest);
    if (token.empty()) return nullptr;
    if (cmd.param_count == kMaxParams) return &kTooManyParams;
    Param p;
    size_t eq = token.find('=');
    p.keyword = token.substr(0, eq);
    if (eq != std::string_view::npos) {
      p.has_value = true;
      p.value = token.substr(eq + 1);
      if (!isEsmtpValue(p.value)) return &kParamSyntax;
    }
    if (!isEsmtpKeyword(p.keyword)) return &kParamSyntax;
    for (size_t k = 0; k < cmd.param_count; ++k)
      if (ieq(cmd.params[k].keyword, p.keyword)) return &kDuplicateParam;
    cmd.params[cmd.param_count++] = p;
  }
}

// The verb parsers fill `cmd` and return the error to reply with, if any.
using MaybeError = std::optional<CommandError>;

MaybeError parseMail(Command& cmd) {
  std::string_view arg = cmd.argument;
  if (arg.size() < 5 || !ieq(arg.substr(0, 5), "FROM:")) return kMailSyntax;
  PathParse p = splitPath(stripSpaces(arg.substr(5)));
  if (!p.ok) return kMailSyntax;
  if (!p.route_ok) return kBadSender;
  cmd.null_path = p.null_path;
  if (!p.null_path) {
    auto mb = parseMailbox(p.mailbox, true);
    if (!mb) return kBadSender;
    cmd.mailbox = *mb;
    cmd.path = p.mailbox;
    cmd.utf8 = mb->utf8;
  }
  if (const CommandError* e = splitParams(p.rest, cmd, kMailSyntax)) return *e;
  for (size_t i = 0; i < cmd.param_count; ++i) {
    const Param& prm = cmd.params[i];
    if (ieq(prm.keyword, "SIZE")) {  // RFC 1870 §3
      if (!prm.has_value || !parseSizeValue(prm.value, cmd.size)) return withDetail(kBadSize, prm.keyword);
      cmd.has_size = true;
    } else if (ieq(prm.keyword, "BODY")) {  // RFC 6152 §2
      if (ieq(prm.value, "7BIT"))
        cmd.body = BodyType::k7Bit;
      else if (ieq(prm.value, "8BITMIME"))
        cmd.body = BodyType::k8BitMime;
      else
        return withDetail(kBadBody, prm.keyword);
    } else if (ieq(prm.keyword, "SMTPUTF8")) {  // RFC 6531 §3.4
      if (prm.has_value) return withDetail(kBadSmtputf8, prm.keyword);
      cmd.smtputf8 = true;
    } else if (ieq(prm.keyword, "AUTH")) {  // RFC 4954 §5
      if (!prm.has_value || !isXtext(prm.value)) return withDetail(kBadAuthParam, prm.keyword);
      cmd.has_auth = true;
      cmd.auth = prm.value;
    } else if (ieq(prm.keyword, "RET")) {  // RFC 3461 §4.3
      if (ieq(prm.value, "FULL"))
        cmd.ret = DsnRetParam::kFull;
      else if (ieq(prm.value, "HDRS"))
        cmd.ret = DsnRetParam::kHdrs;
      else
        return withDetail(kBadRet, prm.keyword);
    } else if (ieq(prm.keyword, "ENVID")) {  // RFC 3461 §4.4
      if (!prm.has_value || !isPrintableXtext(prm.value)) return withDetail(kBadEnvid, prm.keyword);
      if (prm.value.size() > kMaxEnvidLength) return withDetail(kLongEnvid, prm.keyword);
      cmd.envid = prm.value;
    } else {
      return withDetail(kUnknownMailParam, prm.keyword);
    }
  }
  // RFC 6531 §3.4: UTF-8 in the envelope only with the SMTPUTF8 parameter.
  if (!cmd.smtputf8 && cmd.utf8) return kNeedSmtputf8;
  return std::nullopt;
}

MaybeError parseRcpt(Command& cmd) {
  std::string_view arg = cmd.argument;
  if (arg.size() < 3 || !ieq(arg.substr(0, 3), "TO:")) return kRcptSyntax;
  PathParse p = splitPath(stripSpaces(arg.substr(3)));
  if (!p.ok) return kRcptSyntax;
  if (!p.route_ok || p.null_path) return kBadRecipient;
  cmd.path = p.mailbox;
  if (ieq(p.mailbox, "Postmaster")) {  // RFC 5321 §4.1.1.3: <Postmaster> without a domain
    cmd.postmaster = true;
  } else {
    auto mb = parseMailbox(p.mailbox, true);
    if (!mb) return kBadRecipient;
    cmd.mailbox = *mb;
    cmd.utf8 = mb->utf8;
  }
  if (const CommandError* e = splitParams(p.rest, cmd, kRcptSyntax)) return *e;
  for (size_t i = 0; i < cmd.param_count; ++i) {
    const Param& prm = cmd.params[i];
    if (ieq(prm.keyword, "NOTIFY")) {  // RFC 3461 §4.1
      if (const CommandError* e = parseNotify(prm.value, cmd.notify)) return withDetail(*e, prm.keyword);
    } else if (ieq(prm.keyword, "ORCPT")) {  // RFC 3461 §4.2
      if (!prm.has_value || !isOrcptValue(prm.value)) return withDetail(kBadOrcpt, prm.keyword);
      if (prm.value.size() > kMaxOrcptLength) return withDetail(kLongOrcpt, prm.keyword);
      cmd.orcpt = prm.value;
    } else {
      return withDetail(kUnknownRcptParam, prm.keyword);
    }
  }
  return std::nullopt;
}

MaybeError parseBdat(Command& cmd) {
  std::string_view rest = cmd.argument;
  std::string_view size = nextToken(rest);
  std::string_view marker = nextToken(rest);
  if (!nextToken(rest).empty()) return kBdatSyntax;
  auto n = parseDecimal(size, UINT64_MAX);  // RFC 3030 §2: chunk-size = 1*DIGIT
  if (!n) return kBdatSyntax;
  cmd.chunk_size = *n;
  if (!marker.empty()) {
    if (!ieq(marker, "LAST")) return kBdatSyntax;
    cmd.last = true;
  }
  return std::nullopt;
}

MaybeError parseAuth(Command& cmd) {
  std::string_view rest = cmd.argument;
  std::string_view mech = nextToken(rest);
  std::string_view initial = nextToken(rest);
  if (!nextToken(rest).empty()) return kAuthSyntax;
  // RFC 4422 §3.1 sasl-mech = 1*20mech-char, mech-char = UPPER-ALPHA / DIGIT / HYPHEN /
  // UNDERSCORE; lower case accepted (and compared case-insensitively by the session).
  if (mech.empty() || mech.size() > kMaxMechanismLength) return kAuthSyntax;
  for (unsigned char c : mech)
    if (!isAlnum(c) && c != '-' && c != '_') return kAuthSyntax;
  cmd.mechanism = mech;
  if (!initial.empty()) {
    // RFC 4954 §4 initial-response = base64 / "=".
    for (unsigned char c : initial)
      if (!isAlnum(c) && c != '+' && c != '/' && c != '=') return kAuthResponse;
    cmd.initial_response = initial;
    cmd.has_initial_response = true;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> decodeXtext(std::string_view v) {
  if (!isPrintableXtext(v)) return std::nullopt;
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') {
      out += static_cast<char>(hexValue(v[i + 1]) * 16 + hexValue(v[i + 2]));
      i += 2;
    } else {
      out += v[i];
    }
  }
  return out;
}

std::optional<std::string> decodeOrcpt(std::string_view v) {
  if (!isOrcptValue(v)) return std::nullopt;
  size_t semi = v.find(';');
  auto addr = decodeXtext(v.substr(semi + 1));
  if (!addr) return std::nullopt;
  return std::string(v.substr(0, semi + 1)) + *addr;
}

std::string_view verbName(Verb v) {
  for (const auto& e : kVerbs)
    if (e.verb == v) return e.name;
  return "UNKNOWN";
}

Verb verbFromText(std::string_view token) {
  if (token.size() != 4 && token.size() != 8) return Verb::kUnknown;
  for (const auto& e : kVerbs)
    if (ieq(token, e.name)) return e.verb;
  return Verb::kUnknown;
}

namespace {

MaybeError parseInto(std::string_view line, Command& cmd) {
  while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
  if (line.empty()) return kEmptyLine;
  size_t sp = line.find(' ');
  cmd.verb_text = line.substr(0, sp);
  cmd.verb = verbFromText(cmd.verb_text);
  if (cmd.verb == Verb::kUnknown) return kUnknownVerb;
  cmd.argument = sp == std::string_view::npos ? std::string_view() : stripSpaces(line.substr(sp));
  for (unsigned char c : cmd.argument)
    if (isControl(c)) return kControlChar;
  const bool has_arg = !cmd.argument.empty();
  auto needs = [](bool ok, const CommandError& e) { return ok ? MaybeError() : MaybeError(e); };

  switch (cmd.verb) {
    case Verb::kEhlo: return needs(has_arg, kEhloSyntax);  // §4.1.1.1
    case Verb::kHelo: return needs(has_arg, kHeloSyntax);
    case Verb::kMail: return parseMail(cmd);                        // §4.1.1.2
    case Verb::kRcpt: return parseRcpt(cmd);                        // §4.1.1.3
    case Verb::kData: return needs(!has_arg, kDataSyntax);          // §4.1.1.4
    case Verb::kRset: return needs(!has_arg, kRsetSyntax);          // §4.1.1.5
    case Verb::kQuit: return needs(!has_arg, kQuitSyntax);          // §4.1.1.10
    case Verb::kStarttls: return needs(!has_arg, kStarttlsSyntax);  // RFC 3207 §4
    case Verb::kVrfy: return needs(has_arg, kVrfySyntax);           // §4.1.1.6
    case Verb::kExpn: return needs(has_arg, kExpnSyntax);           // §4.1.1.7
    case Verb::kNoop:                                               // §4.1.1.9
    case Verb::kHelp: return std::nullopt;                          // §4.1.1.8
    case Verb::kBdat: return parseBdat(cmd);                        // RFC 3030 §2
    case Verb::kAuth: return parseAuth(cmd);                        // RFC 4954 §4
    case Verb::kUnknown: break;
  }
  return kUnknownVerb;
}

}  // namespace

std::variant<Command, CommandError> parseCommand(std::string_view line) {
  // Built in place: a Command is ~800 bytes, and this runs for every command line.
  std::variant<Command, CommandError> result(std::in_place_type<Command>);
  Command& cmd = std::get<Command>(result);
  MaybeError error = parseInto(line, cmd);
  if (error) result.emplace<CommandError>(*error);
  return result;
}

}  // namespace postern::smtp
