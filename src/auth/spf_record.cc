// RFC 7208 record syntax (§4.5, §4.6.1, §5, §6, ABNF §12) and macro expansion (§7).
// See auth/spf_record.h.
#include "auth/spf_record.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "util/strings.h"

namespace postern::auth {
namespace {

constexpr std::string_view kVersion = "v=spf1";
constexpr std::string_view kDelimiters = ".-+,/_=";   // §7.1 delimiter
constexpr unsigned kMaxCidr4 = 32;                    // §12 ip4-cidr-length
constexpr unsigned kMaxCidr6 = 128;                   // §12 ip6-cidr-length
constexpr size_t kMaxCidrDigits = 3;                  // "128"

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// One element of a macro-string (§7.1): a literal octet or a macro-expand.
struct MacroToken {
  bool literal = true;
  char c = 0;              // literal octet, or the macro letter as written (case kept)
  unsigned digits = 0;     // transformer count, 0: none
  bool reverse = false;    // transformer "r"
  std::string delimiters;  // empty: "."
  bool expand = false;     // the last octet of a macro-expand (escapes included), for domain-end
};

// macro-string = *( macro-expand / macro-literal ), §7.1. `letters` are the macro letters
// allowed (c, r, t only in explanations, §7.2). Escapes %% %_ %- come back as literals.
// `spaces`: explain-string = *( macro-string / SP ) (§6.2) also has spaces.
Result<std::vector<MacroToken>> tokenize(std::string_view s, std::string_view letters, bool spaces = false) {
  std::vector<MacroToken> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c != '%') {
      // macro-literal = %x21-24 / %x26-7E
      bool ok = (static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) <= 0x7e) || (spaces && c == ' ');
      if (!ok)
        return Status::invalid(fmt::format("invalid character 0x{:02x} in macro-string", static_cast<unsigned char>(c)));
      out.push_back({true, c});
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) return Status::invalid("'%' at the end of a macro-string");
    char n = s[i + 1];
    if (n == '%' || n == '_' || n == '-') {
      // §7.1: "%%" is a percent sign, "%_" a space, "%-" a URL-encoded space.
      if (n == '%') out.push_back({true, '%'});
      if (n == '_') out.push_back({true, ' '});
      if (n == '-') {
        out.push_back({true, '%'});
        out.push_back({true, '2'});
        out.push_back({true, '0'});
      }
      out.back().expand = true;
      i += 2;
      continue;
    }
    if (n != '{') return Status::invalid(fmt::format("'%' followed by '{}' in macro-string", n));
    size_t close = s.find('}', i + 2);
    if (close == std::string_view::npos) return Status::invalid("unterminated macro (no '}')");
    std::string_view body = s.substr(i + 2, close - i - 2);
    if (body.empty()) return Status::invalid("empty macro '%{}'");
    MacroToken t;
    t.literal = false;
    t.expand = true;
    t.c = body[0];
    if (letters.find(lower(t.c)) == std::string_view::npos)
      return Status::invalid(fmt::format("macro letter '{}' not allowed here", t.c));
    size_t j = 1;
    // transformers = *DIGIT [ "r" ]; the count saturates (anything over the number of parts means all).
    bool any_digit = false;
    while (j < body.size() && isDigit(body[j])) {
      any_digit = true;
      t.digits = std::min<unsigned>(t.digits * 10 + static_cast<unsigned>(body[j] - '0'), kSpfMaxTransformerParts + 1);
      ++j;
    }
    // §7.3: "If DIGIT is specified, the value MUST be nonzero."
    if (any_digit && t.digits == 0) return Status::invalid("macro transformer count 0");
    if (j < body.size() && lower(body[j]) == 'r') {
      t.reverse = true;
      ++j;
    }
    for (; j < body.size(); ++j) {
      if (kDelimiters.find(body[j]) == std::string_view::npos)
        return Status::invalid(fmt::format("invalid character '{}' in macro '%{{{}}}'", body[j], body));
      t.delimiters.push_back(body[j]);
    }
    out.push_back(std::move(t));
    i = close + 1;
  }
  return out;
}

constexpr std::string_view kDomainLetters = "slodiphv";      // §7.2
constexpr std::string_view kExplainLetters = "slodiphvcrt";  // §7.2: c, r, t in exp text only

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool isTopLabel(std::string_view l) {
  if (l.empty()) return false;
  bool alpha = false, dash = false;
  for (char c : l) {
    if (isAlpha(c)) alpha = true;
    else if (c == '-') dash = true;
    else if (!isDigit(c)) return false;
  }
  if (!dash) return alpha;
  return isAlnum(l.front()) && isAlnum(l.back());
}

// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand
Status checkDomainSpec(std::string_view spec) {
  if (spec.empty()) return Status::invalid("empty domain-spec");
  auto tokens = tokenize(spec, kDomainLetters);
  if (!tokens) return tokens.status();
  // A trailing macro-expand (escapes included) is a domain-end of its own.
  if (tokens->back().expand) return Status::ok();
  // Otherwise the literal octets after the last macro-expand must end in "." toplabel [ "." ].
  std::string tail;
  for (const MacroToken& t : *tokens) {
    if (t.expand) tail.clear();
    else tail.push_back(t.c);
  }
  if (!tail.empty() && tail.back() == '.') tail.pop_back();
  size_t dot = tail.rfind('.');
  if (dot == std::string::npos || !isTopLabel(std::string_view(tail).substr(dot + 1)))
    return Status::invalid(fmt::format("domain-spec '{}' does not end in a valid top label", spec));
  return Status::ok();
}

// "/" ("0" / %x31-39 0*N DIGIT), value at most `max`.
std::optional<unsigned> parseCidr(std::string_view digits, unsigned max) {
  if (digits.empty() || digits.size() > kMaxCidrDigits) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : digits) {
    if (!isDigit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isDigit);
}

// Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off `arg` (§5.3, §5.4).
Status takeDualCidr(std::string_view& arg, SpfTerm& t) {
  auto tail_digits = [&](std::string_view s, size_t& slash) {
    slash = s.rfind('/');
    return slash != std::string_view::npos && allDigits(s.substr(slash + 1));
  };
  size_t slash = 0;
  if (tail_digits(arg, slash) && slash > 0 && arg[slash - 1] == '/') {
    auto v = parseCidr(arg.substr(slash + 1), kMaxCidr6);
    if (!v) return Status::invalid(fmt::format("invalid IPv6 prefix length '{}'", arg.substr(slash + 1)));
    t.cidr6 = *v;
    arg = arg.substr(0, slash - 1);
  }
  if (tail_digits(arg, slash)) {
    auto v = parseCidr(arg.substr(slash + 1), kMaxCidr4);
    if (!v) return Status::invalid(fmt::format("invalid IPv4 prefix length '{}'", arg.substr(slash + 1)));
    t.cidr4 = *v;
    arg = arg.substr(0, slash);
  }
  return Status::ok();
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ), §12
bool isModifierName(std::string_view s) {
  if (s.empty() || !isAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

Result<SpfTerm> parseTerm(std::string_view text) {
  SpfTerm t;
  t.text = std::string(text);
  // modifier = name "=" macro-string (§6, §4.6.1): the name decides before '=' does.
  if (size_t eq = text.find('='); eq != std::string_view::npos && isModifierName(text.substr(0, eq))) {
    std::string_view name = text.substr(0, eq), value = text.substr(eq + 1);
    if (iequals(name, "redirect") || iequals(name, "exp")) {
      t.kind = iequals(name, "redirect") ? SpfTerm::Kind::kRedirect : SpfTerm::Kind::kExp;
      if (Status s = checkDomainSpec(value); !s) return s;
      t.domain_spec = std::string(value);
      return t;
    }
    // §6: unrecognized modifiers are ignored, but must still be macro-strings.
    auto tokens = tokenize(value, kExplainLetters);
    if (!tokens) return tokens.status();
    t.kind = SpfTerm::Kind::kUnknownModifier;
    t.name = std::string(name);
    t.value = std::string(value);
    return t;
  }
  // directive = [ qualifier ] mechanism (§4.6.2)
  std::string_view m = text;
  switch (m.empty() ? '\0' : m[0]) {
    case '+': t.qualifier = SpfQualifier::kPass; m.remove_prefix(1); break;
    case '-': t.qualifier = SpfQualifier::kFail; m.remove_prefix(1); break;
    case '~': t.qualifier = SpfQualifier::kSoftFail; m.remove_prefix(1); break;
    case '?': t.qualifier = SpfQualifier::kNeutral; m.remove_prefix(1); break;
    default: break;
  }
  size_t end = std::min(m.find(':'), m.find('/'));
  std::string_view name = m.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : m.substr(end);
  bool colon = !rest.empty() && rest[0] == ':';
  std::string_view arg = colon ? rest.substr(1) : rest;   // after ':' or starting with '/'

  auto noArgs = [&](SpfTerm::Kind k) -> Result<SpfTerm> {
    if (!rest.empty()) return Status::invalid(fmt::format("'{}' takes no argument", name));
    t.kind = k;
    return t;
  };
  auto needDomain = [&](SpfTerm::Kind k) -> Result<SpfTerm> {
    if (!colon) return Status::invalid(fmt::format("'{}' needs ':domain'", name));
    if (Status s = checkDomainSpec(arg); !s) return s;
    t.kind = k;
    t.domain_spec = std::string(arg);
    return t;
  };

  if (iequals(name, "all")) return noArgs(SpfTerm::Kind::kAll);
  if (iequals(name, "include")) return needDomain(SpfTerm::Kind::kInclude);
  if (iequals(name, "exists")) return needDomain(SpfTerm::Kind::kExists);
  if (iequals(name, "a") || iequals(name, "mx")) {
    // a / mx = name [ ":" domain-spec ] [ dual-cidr-length ] (§5.3, §5.4)
    t.kind = iequals(name, "a") ? SpfTerm::Kind::kA : SpfTerm::Kind::kMx;
    if (!colon && !rest.empty() && rest[0] != '/') return Status::invalid(fmt::format("bad '{}' mechanism", name));
    if (Status s = takeDualCidr(arg, t); !s) return s;
    if (colon) {
      if (Status s = checkDomainSpec(arg); !s) return s;
      t.domain_spec = std::string(arg);
    } else if (!arg.empty()) {
      return Status::invalid(fmt::format("bad prefix length in '{}'", text));
    }
    return t;
  }
  if (iequals(name, "ptr")) {
    // ptr = "ptr" [ ":" domain-spec ] (§5.5)
    t.kind = SpfTerm::Kind::kPtr;
    if (rest.empty()) return t;
    if (!colon) return Status::invalid("'ptr' takes no prefix length");
    if (Status s = checkDomainSpec(arg); !s) return s;
    t.domain_spec = std::string(arg);
    return t;
  }
  if (iequals(name, "ip4") || iequals(name, "ip6")) {
    // ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ]; ip6 likewise (§5.6)
    bool v4 = iequals(name, "ip4");
    t.kind = v4 ? SpfTerm::Kind::kIp4 : SpfTerm::Kind::kIp6;
    if (!colon) return Status::invalid(fmt::format("'{}' needs ':address'", name));
    std::string_view addr = arg;
    if (size_t slash = arg.find('/'); slash != std::string_view::npos) {
      addr = arg.substr(0, slash);
      auto v = parseCidr(arg.substr(slash + 1), v4 ? kMaxCidr4 : kMaxCidr6);
      if (!v) return Status::invalid(fmt::format("invalid prefix length in '{}'", text));
      (v4 ? t.cidr4 : t.cidr6) = *v;
    }
    auto ip = v4 ? IpAddress::parseV4(addr) : IpAddress::parseV6(addr);
    if (!ip) return Status::invalid(fmt::format("invalid {} address '{}'", v4 ? "IPv4" : "IPv6", addr));
    t.ip = *ip;
    return t;
  }
  return Status::invalid(fmt::format("unknown mechanism '{}'", name));
}

// Label rules shared by isValidSpfDomain.
bool labelsOk(std::string_view d, size_t* count) {
  size_t n = 0;
  for (std::string_view label : split(d, '.')) {
    if (label.empty() || label.size() > kSpfMaxLabelLength) return false;
    for (char c : label)
      if (!isAlnum(c) && c != '-' && c != '_') return false;
    ++n;
  }
  *count = n;
  return true;
}

// RFC 3986 §2.3 unreserved characters stay; the rest becomes %XX (§7.3, upper-case macros).
std::string urlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// %{i}: dotted quad, or IPv6 as 32 dotted nibbles (§7.3).
std::string ipForMacro(const IpAddress& ip) {
  if (ip.isV4()) return ip.toString();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t k = 0; k < 16; ++k) {
    if (k) out.push_back('.');
    out.push_back(kHex[ip.bytes()[k] >> 4]);
    out.push_back('.');
    out.push_back(kHex[ip.bytes()[k] & 0xf]);
  }
  return out;
}

std::string_view localPart(std::string_view sender) {
  size_t at = sender.rfind('@');
  std::string_view l = at == std::string_view::npos ? std::string_view() : sender.substr(0, at);
  return l.empty() ? std::string_view("postmaster") : l;
}

std::string_view senderDomain(std::string_view sender) {
  size_t at = sender.rfind('@');
  return at == std::string_view::npos ? sender : sender.substr(at + 1);
}

// §7.3: split on the delimiters, reverse on "r", keep the rightmost `digits` parts, join with ".".
std::string transform(std::string_view value, const MacroToken& t) {
  std::string_view delims = t.delimiters.empty() ? std::string_view(".") : std::string_view(t.delimiters);
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t k = 0; k <= value.size(); ++k) {
    if (k == value.size() || delims.find(value[k]) != std::string_view::npos) {
      parts.push_back(value.substr(start, k - start));
      start = k + 1;
    }
  }
  if (t.reverse) std::reverse(parts.begin(), parts.end());
  size_t keep = parts.size();
  if (t.digits != 0 && t.digits < keep) keep = t.digits;
  std::string out;
  for (size_t k = parts.size() - keep; k < parts.size(); ++k) {
    if (k != parts.size() - keep) out.push_back('.');
    out.append(parts[k]);
  }
  return out;
}

}  // namespace

const char* spfResultName(SpfResult r) {
  switch (r) {
    case SpfResult::kNone: return "none";
    case SpfResult::kNeutral: return "neutral";
    case SpfResult::kPass: return "pass";
    case SpfResult::kFail: return "fail";
    case SpfResult::kSoftFail: return "softfail";
    case SpfResult::kTempError: return "temperror";
    case SpfResult::kPermError: return "permerror";
  }
  return "none";
}

bool isSpfRecord(std::string_view txt) {
  return istartsWith(txt, kVersion) && (txt.size() == kVersion.size() || txt[kVersion.size()] == ' ');
}

bool isValidSpfDomain(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.size() > kSpfMaxDomainLength) return false;
  size_t labels = 0;
  if (!labelsOk(d, &labels) || labels < 2) return false;
  std::string_view top = d.substr(d.rfind('.') + 1);
  return !allDigits(top);
}

Result<SpfRecord> parseSpfRecord(std::string_view text) {
  // record = version terms *SP (§12); version terminated by SP or the end (§4.5).
  if (!isSpfRecord(text)) return Status::invalid("not an SPF record (no 'v=spf1')");
  SpfRecord rec;
  bool redirect = false, exp = false;
  size_t index = 0;
  std::string_view rest = text.substr(kVersion.size());
  while (!rest.empty()) {
    if (rest[0] == ' ') {
      rest.remove_prefix(1);
      continue;
    }
    size_t sp = rest.find(' ');
    std::string_view term = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp);
    ++index;
    if (index > kSpfMaxTerms) return Status::invalid(fmt::format("more than {} terms", kSpfMaxTerms));
    auto t = parseTerm(term);
    if (!t) return Status::invalid(fmt::format("{} at term {}", t.status().message(), index));
    // §6: redirect and exp each at most once.
    if (t->kind == SpfTerm::Kind::kRedirect) {
      if (redirect) return Status::invalid(fmt::format("second 'redirect' at term {}", index));
      redirect = true;
    }
    if (t->kind == SpfTerm::Kind::kExp) {
      if (exp) return Status::invalid(fmt::format("second 'exp' at term {}", index));
      exp = true;
    }
    rec.terms.push_back(std::move(*t));
  }
  return rec;
}

bool spfMacrosNeedPtr(std::string_view s) {
  return s.find("%{p") != std::string_view::npos || s.find("%{P") != std::string_view::npos;
}

Result<std::string> expandSpfMacros(std::string_view macro_string, const SpfRequest& req, std::string_view domain,
                                    bool exp, const std::string& validated_ptr) {
  auto tokens = tokenize(macro_string, exp ? kExplainLetters : kDomainLetters, exp);
  if (!tokens) return tokens.status();
  IpAddress ip = req.ip.unmapped();
  std::string out;
  for (const MacroToken& t : *tokens) {
    if (t.literal) {
      out.push_back(t.c);
      continue;
    }
    std::string value;
    switch (lower(t.c)) {
      case 's': value = req.sender; break;
      case 'l': value = std::string(localPart(req.sender)); break;
      case 'o': value = std::string(senderDomain(req.sender)); break;
      case 'd': value = std::string(domain); break;
      case 'i': value = ipForMacro(ip); break;
      case 'p': value = validated_ptr.empty() ? "unknown" : validated_ptr; break;
      case 'v': value = ip.isV4() ? "in-addr" : "ip6"; break;
      case 'h': value = req.helo; break;
      case 'c': value = ip.toString(); break;
      case 'r': value = req.receiver.empty() ? "unknown" : req.receiver; break;
      case 't': value = std::to_string(req.now); break;
      default: return Status::invalid(fmt::format("macro letter '{}' not allowed here", t.c));
    }
    value = transform(value, t);
    out += (t.c >= 'A' && t.c <= 'Z') ? urlEscape(value) : value;
  }
  if (!exp) {
    // §7.3: a name longer than 253 octets loses labels from the left until it fits.
    if (out.size() > 1 && out.back() == '.') out.pop_back();
    while (out.size() > kSpfMaxDomainLength) {
      size_t dot = out.find('.');
      if (dot == std::string::npos) {
        out.erase(0, out.size() - kSpfMaxDomainLength);
        break;
      }
      out.erase(0, dot + 1);
    }
  }
  return out;
}

}  // namespace postern::auth
