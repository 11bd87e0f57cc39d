// RFC 5321 §4.1.2 / §4.1.3 address syntax with the RFC 6531 §3.3 UTF-8 extensions.
#include "smtp/proto/address.h"

#include <cstdint>

namespace postern::smtp {
namespace {

bool isAlpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isDigit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool isHex(unsigned char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 5322 §3.2.3 atext, ASCII part.
bool isAtext(unsigned char c) {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~': return true;
    default: return false;
  }
}

// Length of the well-formed UTF-8 sequence of a non-ASCII character starting at s[i]
// (RFC 3629 §4 UTF8-2 / UTF8-3 / UTF8-4), or 0 if there is none.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto at = [&](size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
  auto tail = [&](size_t k, unsigned lo, unsigned hi) { return k < s.size() && at(k) >= lo && at(k) <= hi; };
  unsigned c = at(i);
  if (c >= 0xC2 && c <= 0xDF) return tail(i + 1, 0x80, 0xBF) ? 2 : 0;
  if (c == 0xE0) return tail(i + 1, 0xA0, 0xBF) && tail(i + 2, 0x80, 0xBF) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
    return tail(i + 1, 0x80, 0xBF) && tail(i + 2, 0x80, 0xBF) ? 3 : 0;
  if (c == 0xED) return tail(i + 1, 0x80, 0x9F) && tail(i + 2, 0x80, 0xBF) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return tail(i + 1, 0x90, 0xBF) && tail(i + 2, 0x80, 0xBF) && tail(i + 3, 0x80, 0xBF) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3)
    return tail(i + 1, 0x80, 0xBF) && tail(i + 2, 0x80, 0xBF) && tail(i + 3, 0x80, 0xBF) ? 4 : 0;
  if (c == 0xF4) return tail(i + 1, 0x80, 0x8F) && tail(i + 2, 0x80, 0xBF) && tail(i + 3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str], or an RFC 6531 U-label (approximated:
// LDH plus UTF-8 characters, no hyphen at either end; IDNA2008 rules are not checked).
bool isSubDomain(std::string_view label, bool allow_utf8) {
  if (label.empty() || label.front() == '-' || label.back() == '-') return false;
  bool ascii = true;
  for (size_t i = 0; i < label.size();) {
    unsigned char c = static_cast<unsigned char>(label[i]);
    if (isAlpha(c) || isDigit(c) || c == '-') {
      ++i;
      continue;
    }
    if (c < 0x80 || !allow_utf8) return false;
    size_t n = utf8SequenceLength(label, i);
    if (n == 0) return false;
    ascii = false;
    i += n;
  }
  return !ascii || label.size() <= kMaxLabelLength;
}

bool isDomainName(std::string_view d, bool allow_utf8) {
  if (d.empty()) return false;
  bool ascii = !hasNonAscii(d);
  if (ascii && d.size() > kMaxDomainLength) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!isSubDomain(label, allow_utf8)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// RFC 5321 §4.1.3 IPv4-address-literal body: Snum 3("." Snum), Snum = 1*3DIGIT, 0..255.
bool isIpv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  for (;;) {
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && isDigit(static_cast<unsigned char>(s[i])) && i - start < 3) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
    }
    if (i == start || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// RFC 5321 §4.1.3 IPv6-addr (full, compressed, and with a trailing IPv4 part). "::" may
// stand for one or more groups (RFC 4291 §2.2), slightly wider than §4.1.3's "at least 2".
bool isIpv6(std::string_view s) {
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;  // "::"
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  for (;;) {
    // One group, or the trailing IPv4 part.
    size_t start = i;
    while (i < s.size() && isHex(static_cast<unsigned char>(s[i])) && i - start < 5) ++i;
    if (i < s.size() && s[i] == '.') {
      if (!isIpv4(s.substr(start))) return false;
      groups += 2;
      break;
    }
    if (i == start || i - start > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (compressed) return false;  // only one "::"
      compressed = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;  // trailing single ':'
    }
    if (groups > 8) return false;
  }
  return compressed ? groups <= 7 : groups == 8;
}

// Ends of a Quoted-string starting at s[0] == '"': the index just past the closing quote,
// or 0 if it is malformed (RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP, RFC 6531 §3.3).
size_t quotedStringEnd(std::string_view s, bool allow_utf8) {
  for (size_t i = 1; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (i + 1 >= s.size()) return 0;
      unsigned char q = static_cast<unsigned char>(s[i + 1]);
      if (q < 32 || q > 126) return 0;
      i += 2;
    } else if (c >= 32 && c <= 126) {
      ++i;
    } else if (c >= 0x80 && allow_utf8) {
      size_t n = utf8SequenceLength(s, i);
      if (n == 0) return 0;
      i += n;
    } else {
      return 0;
    }
  }
  return 0;
}

}  // namespace

bool hasNonAscii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool isDotString(std::string_view s, bool allow_utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (s[i - 1] == '.') return false;  // empty atom
      ++i;
    } else if (isAtext(c)) {
      ++i;
    } else if (c >= 0x80 && allow_utf8) {
      size_t n = utf8SequenceLength(s, i);
      if (n == 0) return false;
      i += n;
    } else {
      return false;
    }
  }
  return true;
}

bool isValidAddressLiteral(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view body = s.substr(1, s.size() - 2);
  if (body.size() > 5 && (body[0] == 'I' || body[0] == 'i') && (body[1] == 'P' || body[1] == 'p') &&
      (body[2] == 'V' || body[2] == 'v') && body[3] == '6' && body[4] == ':')
    return isIpv6(body.substr(5));
  return isIpv4(body);
}

bool isValidDomain(std::string_view d, bool allow_utf8) {
  if (!d.empty() && d.front() == '[') return isValidAddressLiteral(d);
  return isDomainName(d, allow_utf8);
}

std::optional<Mailbox> parseMailbox(std::string_view s, bool allow_utf8) {
  Mailbox m;
  size_t at;
  if (!s.empty() && s.front() == '"') {
    size_t end = quotedStringEnd(s, allow_utf8);
    if (end == 0 || end >= s.size() || s[end] != '@') return std::nullopt;
    at = end;
    m.quoted_local = true;
  } else {
    at = s.find('@');
    if (at == std::string_view::npos || !isDotString(s.substr(0, at), allow_utf8)) return std::nullopt;
  }
  m.local_part = s.substr(0, at);
  m.domain = s.substr(at + 1);
  if (!isValidDomain(m.domain, allow_utf8)) return std::nullopt;
  m.address_literal = m.domain.front() == '[';
  m.utf8 = hasNonAscii(s);
  return m;
}

std::string unquotedLocalPart(const Mailbox& m) {
  if (!m.quoted_local) return std::string(m.local_part);
  std::string unquoted;
  std::string_view body = m.local_part.substr(1, m.local_part.size() - 2);
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\\' && i + 1 < body.size()) ++i;
    unquoted.push_back(body[i]);
  }
  return unquoted;
}

std::string canonicalAddress(const Mailbox& m) {
  std::string out;
  out.reserve(m.local_part.size() + 1 + m.domain.size());
  if (m.quoted_local) {
    std::string unquoted = unquotedLocalPart(m);
    out += isDotString(unquoted, true) ? std::string_view(unquoted) : m.local_part;
  } else {
    out += m.local_part;
  }
  out.push_back('@');
  for (char c : m.domain) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  return out;
}

}  // namespace postern::smtp
