// RFC 8259 §7 JSON string escaping; RFC 3629 §4 UTF-8 well-formedness.
#include "log/escape.h"

#include <fmt/format.h>

namespace postern::log {
namespace {

bool isCont(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// The escapes both formats share; false when `c` is not one of them.
bool appendCommonEscape(std::string& out, unsigned char c) {
  switch (c) {
    case '"': out += "\\\""; return true;
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += fmt::format("\\u{:04x}", c);
        return true;
      }
      return false;
  }
}

}  // namespace

size_t utf8SequenceAt(std::string_view v, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(v[k]); };
  const unsigned char c = at(i);
  const size_t left = v.size() - i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && isCont(at(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !isCont(at(i + 1)) || !isCont(at(i + 2))) return 0;
    if (c == 0xE0 && at(i + 1) < 0xA0) return 0;  // overlong
    if (c == 0xED && at(i + 1) > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !isCont(at(i + 1)) || !isCont(at(i + 2)) || !isCont(at(i + 3))) return 0;
    if (c == 0xF0 && at(i + 1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && at(i + 1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;  // 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF
}

void appendJsonEscaped(std::string& out, std::string_view v) {
  for (size_t i = 0; i < v.size();) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if (c < 0x80) {
      if (!appendCommonEscape(out, c)) out += static_cast<char>(c);
      ++i;
      continue;
    }
    const size_t n = utf8SequenceAt(v, i);
    if (n == 0) {
      out += fmt::format("\\\\x{:02x}", c);
      ++i;
    } else {
      out.append(v.substr(i, n));
      i += n;
    }
  }
}

void appendTextEscaped(std::string& out, std::string_view v) {
  for (unsigned char c : v) {
    if (appendCommonEscape(out, c)) continue;
    if (c >= 0x80)
      out += fmt::format("\\u{:04x}", c);
    else
      out += static_cast<char>(c);
  }
}

}  // namespace postern::log
