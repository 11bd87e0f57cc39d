// Parsers for docker-mailserver config files; formats in dms_files.h.
#include "import/dms_files.h"

#include "util/strings.h"

namespace postern::import {

namespace {

using Line = TextLine;   // util/strings.h: splitLines

bool isBlankOrComment(std::string_view l) {
  std::string_view t = trim(l);
  return t.empty() || t.front() == '#';
}

bool startsWithBlank(std::string_view l) {
  return !l.empty() && (l.front() == ' ' || l.front() == '\t');
}

BadLine bad(const Line& l, std::string reason) {
  return BadLine{l.number, std::string(trim(l.text)), std::move(reason)};
}

bool tooLong(const Line& l) {
  return l.text.size() > kMaxLineLength;
}

// A logical line: a first line plus the lines that continue it (start with whitespace).
// Comments and blank lines inside are skipped, as Postfix does.
struct Logical {
  std::string text;
  size_t line;
  size_t end_line;
};
// Joins continuation lines; a continuation with nothing before it is a BadLine.
std::vector<Logical> joinContinued(const std::vector<Line>& lines, std::vector<BadLine>& bad_lines) {
  std::vector<Logical> out;
  bool open = false;
  for (const auto& l : lines) {
    if (tooLong(l)) {
      bad_lines.push_back({l.number, std::string(trim(l.text).substr(0, 80)), "line too long"});
      open = false;
      continue;
    }
    if (isBlankOrComment(l.text)) continue;
    if (startsWithBlank(l.text)) {
      if (!open) {
        bad_lines.push_back(bad(l, "continuation line (starts with a blank) with no setting before it"));
        continue;
      }
      out.back().text += ' ';
      out.back().text += trim(l.text);
      out.back().end_line = l.number;
      continue;
    }
    out.push_back({std::string(trim(l.text)), l.number, l.number});
    open = true;
  }
  return out;
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool isName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!isNameChar(c)) return false;
  return true;
}

bool isDomain(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (char c : s)
    if (!isNameChar(c) || c == '_') return false;
  return s.find("..") == std::string_view::npos;
}

// "[host]:port", "host:port", "[host]" or "host" into its parts (port 25 when absent).
bool parseRelayHost(std::string_view s, std::string& host, unsigned& port, bool& mx_lookup) {
  port = 25;
  mx_lookup = true;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(s.substr(1, close - 1));
    mx_lookup = false;
    s.remove_prefix(close + 1);
    if (!s.empty()) {
      if (s.front() != ':') return false;
      auto p = parseDecimal(s.substr(1), 65535);
      if (!p || *p == 0) return false;
      port = static_cast<unsigned>(*p);
    }
  } else {
    size_t colon = s.rfind(':');
    host = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos) {
      auto p = parseDecimal(s.substr(colon + 1), 65535);
      if (!p || *p == 0) return false;
      port = static_cast<unsigned>(*p);
    }
  }
  return isDomain(host) || (!host.empty() && host.find_first_not_of("0123456789abcdefABCDEF.:") == std::string::npos);
}

}  // namespace

EnvFile parseEnvFile(std::string_view text) {
  EnvFile f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    if (tooLong(l)) {
      f.bad.push_back({l.number, std::string(trim(l.text).substr(0, 80)), "line too long"});
      continue;
    }
    std::string_view t = trim(l.text);
    if (t.substr(0, 7) == "export ") t = trim(t.substr(7));
    size_t eq = t.find('=');
    if (eq == std::string_view::npos) {
      f.bad.push_back(bad(l, "expected NAME=value"));
      continue;
    }
    std::string_view name = trim(t.substr(0, eq));
    std::string_view value = trim(t.substr(eq + 1));
    if (!isName(name) || name.find('.') != std::string_view::npos || name.find('-') != std::string_view::npos) {
      f.bad.push_back(bad(l, "not a variable name before '='"));
      continue;
    }
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    } else if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      f.bad.push_back(bad(l, "unterminated quote"));
      continue;
    } else if (size_t hash = value.find(" #"); hash != std::string_view::npos) {
      value = trim(value.substr(0, hash));  // compose: ` #` starts a comment after an unquoted value
    }
    f.vars.push_back({std::string(name), std::string(value), l.number});
  }
  return f;
}

MainCf parseMainCf(std::string_view text) {
  MainCf f;
  for (auto& lg : joinContinued(splitLines(text), f.bad)) {
    size_t eq = lg.text.find('=');
    std::string_view name = trim(std::string_view(lg.text).substr(0, eq));
    if (eq == std::string::npos || !isName(name)) {
      f.bad.push_back({lg.line, lg.text, "expected 'name = value'"});
      continue;
    }
    f.settings.push_back(
        {std::string(name), std::string(trim(std::string_view(lg.text).substr(eq + 1))), lg.line, lg.end_line});
  }
  return f;
}

MasterCf parseMasterOverrides(std::string_view text) {
  MasterCf f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    if (tooLong(l)) {
      f.bad.push_back({l.number, std::string(trim(l.text).substr(0, 80)), "line too long"});
      continue;
    }
    std::string_view t = trim(l.text);
    size_t eq = t.find('=');
    std::string_view key = trim(t.substr(0, eq));
    auto parts = split(key, '/');
    if (eq == std::string_view::npos || parts.size() != 3 || !isName(parts[0]) || !isName(parts[1]) ||
        !isName(parts[2])) {
      f.bad.push_back(bad(l, "expected service/type/parameter=value"));
      continue;
    }
    f.overrides.push_back({std::string(parts[0]), std::string(parts[1]), std::string(parts[2]),
                           std::string(trim(t.substr(eq + 1))), l.number});
  }
  return f;
}

RelayMap parseRelayMap(std::string_view text) {
  RelayMap f;
  for (auto& lg : joinContinued(splitLines(text), f.bad)) {
    std::string_view rest = lg.text;
    std::string_view key = takeWord(rest);
    std::string_view value = takeWord(rest);
    if (key.size() < 2 || key.front() != '@' || !isDomain(key.substr(1))) {
      f.bad.push_back({lg.line, lg.text, "expected '@domain' first (a sender domain)"});
      continue;
    }
    if (!trim(rest).empty()) {
      f.bad.push_back({lg.line, lg.text, "expected at most one relay after the domain"});
      continue;
    }
    RelayRoute r;
    r.domain = toLower(key.substr(1));
    r.line = lg.line;
    if (!value.empty() && !parseRelayHost(value, r.host, r.port, r.mx_lookup)) {
      f.bad.push_back({lg.line, lg.text, "expected the relay as [host]:port"});
      continue;
    }
    f.routes.push_back(std::move(r));
  }
  return f;
}

SaslPasswords parseSaslPasswords(std::string_view text) {
  SaslPasswords f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    std::string_view rest = trim(l.text);
    std::string_view key = takeWord(rest);
    std::string_view cred = trim(rest);
    // The reason and text of a bad line carry only the key: the rest may be a password.
    if (l.text.size() > kMaxLineLength || cred.empty() || cred.find(':') == std::string_view::npos) {
      f.bad.push_back({l.number, std::string(key.substr(0, 80)), "expected 'KEY user:password'"});
      continue;
    }
    size_t colon = cred.find(':');
    if (key.empty() || (key.front() != '@' && key.front() != '[' && !isDomain(key))) {
      f.bad.push_back({l.number, std::string(key.substr(0, 80)), "expected '@domain' or '[host]:port' first"});
      continue;
    }
    f.entries.push_back(
        {std::string(key), std::string(cred.substr(0, colon)), std::string(cred.substr(colon + 1)), l.number});
  }
  return f;
}

LocalAliases parseLocalAliases(std::string_view text) {
  LocalAliases f;
  for (auto& lg : joinContinued(splitLines(text), f.bad)) {
    size_t colon = lg.text.find(':');
    std::string_view name = trim(std::string_view(lg.text).substr(0, colon));
    if (!name.empty() && name.front() == '"' && name.back() == '"' && name.size() >= 2)
      name = name.substr(1, name.size() - 2);
    if (colon == std::string::npos || name.empty() || name.find_first_of(" \t@") != std::string_view::npos) {
      f.bad.push_back({lg.line, lg.text, "expected 'name: target[, target...]'"});
      continue;
    }
    LocalAlias a{toLower(name), {}, lg.line, lg.end_line};
    std::string_view rest = std::string_view(lg.text).substr(colon + 1);
    for (auto piece : split(rest, ',')) {
      piece = trim(piece);
      if (!piece.empty()) a.targets.emplace_back(piece);
    }
    if (a.targets.empty()) {
      f.bad.push_back({lg.line, lg.text, "no target after ':'"});
      continue;
    }
    f.aliases.push_back(std::move(a));
  }
  return f;
}

RegexpAliases parseRegexpAliases(std::string_view text) {
  RegexpAliases f;
  for (auto& lg : joinContinued(splitLines(text), f.bad)) {
    std::string_view t = lg.text;
    // regexp_table(5) also allows if/endif blocks; they are reported as lines of their own.
    if (t.empty() || t.front() != '/') {
      f.bad.push_back({lg.line, lg.text, "expected /pattern/ result"});
      continue;
    }
    // The pattern ends at the first '/' not escaped by a backslash.
    size_t i = 1;
    for (; i < t.size(); ++i) {
      if (t[i] == '\\')
        ++i;
      else if (t[i] == '/')
        break;
    }
    if (i >= t.size()) {
      f.bad.push_back({lg.line, lg.text, "pattern has no closing '/'"});
      continue;
    }
    RegexpAlias r;
    r.pattern = std::string(t.substr(1, i - 1));
    std::string_view rest = t.substr(i + 1);
    size_t flags_end = 0;
    while (flags_end < rest.size() && rest[flags_end] != ' ' && rest[flags_end] != '\t') ++flags_end;
    r.flags = std::string(rest.substr(0, flags_end));
    r.result = std::string(trim(rest.substr(flags_end)));
    r.line = lg.line;
    if (r.result.empty()) {
      f.bad.push_back({lg.line, lg.text, "no result after the pattern"});
      continue;
    }
    f.rules.push_back(std::move(r));
  }
  return f;
}

std::string literalAddressOf(const RegexpAlias& rule) {
  std::string_view p = rule.pattern;
  if (!rule.flags.empty() && rule.flags != "i") return "";
  if (p.size() < 3 || p.front() != '^' || p.back() != '$') return "";
  p = p.substr(1, p.size() - 2);
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return "";
      char n = p[++i];
      if (n != '.' && n != '-' && n != '+' && n != '@') return "";
      out += n;
    } else if (isNameChar(c) && c != '.') {
      out += c;
    } else if (c == '@' || c == '+') {
      if (c == '+') return "";  // unescaped '+' is a quantifier
      out += c;
    } else {
      return "";  // '.', '*', '(', '[', '|', ... make it a real pattern
    }
  }
  size_t at = out.find('@');
  if (at == std::string::npos || at == 0 || at != out.rfind('@') || !isDomain(out.substr(at + 1))) return "";
  return toLower(out);
}

Quotas parseQuotas(std::string_view text) {
  Quotas f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    std::string_view t = trim(l.text);
    size_t colon = t.rfind(':');
    if (tooLong(l) || colon == std::string_view::npos) {
      f.bad.push_back(bad(l, "expected user@domain:SIZE"));
      continue;
    }
    std::string_view addr = t.substr(0, colon), size = t.substr(colon + 1);
    size_t at = addr.find('@');
    bool size_ok = !size.empty() && size.find_first_not_of("0123456789") != 0 &&
                   size.find_first_not_of("0123456789kKmMgGtTbB%") == std::string_view::npos;
    if (at == std::string_view::npos || at == 0 || !isDomain(addr.substr(at + 1)) || !size_ok) {
      f.bad.push_back(bad(l, "expected user@domain:SIZE such as user@example.com:50M"));
      continue;
    }
    f.quotas.push_back({toLower(addr), std::string(size), l.number});
  }
  return f;
}

DovecotCf parseDovecotCf(std::string_view text) {
  DovecotCf f;
  std::vector<std::string> stack;
  auto joined = [&] {
    std::string s;
    for (const auto& p : stack) s += (s.empty() ? "" : "/") + p;
    return s;
  };
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    if (tooLong(l)) {
      f.bad.push_back({l.number, std::string(trim(l.text).substr(0, 80)), "line too long"});
      continue;
    }
    std::string_view t = trim(l.text);
    if (t == "}") {
      if (stack.empty())
        f.bad.push_back(bad(l, "'}' with no open section"));
      else
        stack.pop_back();
      continue;
    }
    if (t.back() == '{') {
      std::string header(trim(t.substr(0, t.size() - 1)));
      if (header.empty()) {
        f.bad.push_back(bad(l, "section with no name"));
        continue;
      }
      f.settings.push_back({joined(), header, "", true, l.number});
      stack.push_back(header);
      continue;
    }
    if (t.front() == '!') {  // !include and friends
      f.settings.push_back({joined(), std::string(t), "", false, l.number});
      continue;
    }
    size_t eq = t.find('=');
    std::string_view name = trim(t.substr(0, eq));
    if (eq == std::string_view::npos || !isName(name)) {
      f.bad.push_back(bad(l, "expected 'name = value'"));
      continue;
    }
    f.settings.push_back({joined(), std::string(name), std::string(trim(t.substr(eq + 1))), false, l.number});
  }
  return f;
}

KeyTable parseKeyTable(std::string_view text) {
  KeyTable f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    std::string_view rest = trim(l.text);
    std::string_view name = takeWord(rest);
    std::string_view spec = takeWord(rest);
    auto parts = split(spec, ':');
    if (tooLong(l) || name.empty() || !trim(rest).empty() || parts.size() != 3 || !isDomain(parts[0]) ||
        !isName(parts[1]) || parts[2].empty()) {
      f.bad.push_back(bad(l, "expected 'keyname domain:selector:/path/to/key'"));
      continue;
    }
    f.keys.push_back({std::string(name), toLower(parts[0]), std::string(parts[1]), std::string(parts[2]), l.number});
  }
  return f;
}

SigningTable parseSigningTable(std::string_view text) {
  SigningTable f;
  for (const auto& l : splitLines(text)) {
    if (isBlankOrComment(l.text)) continue;
    std::string_view rest = trim(l.text);
    std::string_view pattern = takeWord(rest);
    std::string_view key = takeWord(rest);
    if (tooLong(l) || key.empty() || !trim(rest).empty()) {
      f.bad.push_back(bad(l, "expected 'pattern keyname'"));
      continue;
    }
    f.entries.push_back({std::string(pattern), std::string(key), l.number});
  }
  return f;
}

bool parseRspamdKeyName(std::string_view name, std::string& domain, std::string& selector) {
  constexpr std::string_view kSuffix = ".private.txt";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  name.remove_suffix(kSuffix.size());
  if (name.substr(0, 8) == "ed25519-") {
    name.remove_prefix(8);
  } else if (name.substr(0, 4) == "rsa-") {
    name.remove_prefix(4);
    size_t dash = name.find('-');
    if (dash == std::string_view::npos || !parseDecimal(name.substr(0, dash), 65536)) return false;
    name.remove_prefix(dash + 1);
  } else {
    return false;
  }
  // DMS selectors are single words ("mail" by default); the domain is what follows.
  size_t dash = name.find('-');
  if (dash == std::string_view::npos || dash == 0) return false;
  std::string_view sel = name.substr(0, dash), dom = name.substr(dash + 1);
  if (!isName(sel) || !isDomain(dom)) return false;
  selector = std::string(sel);
  domain = toLower(dom);
  return true;
}

}  // namespace postern::import
