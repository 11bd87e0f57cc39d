// RFC 5321 §4.2 reply formatting with RFC 2034 enhanced status codes.
#include "smtp/proto/reply.h"

#include <cassert>

namespace postern::smtp {
namespace {

// Writes one reply line. `last` selects SP (final line) or "-" (continuation).
void appendLine(std::string& out, int code, std::string_view enhanced, std::string_view text, bool last) {
  assert(code >= 200 && code <= 599);
  assert(enhanced.empty() || enhanced.front() == static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(last ? ' ' : '-');
  size_t prefix = 4;
  if (!enhanced.empty()) {
    out.append(enhanced);
    prefix += enhanced.size();
    if (!text.empty()) {
      out.push_back(' ');
      ++prefix;
    }
  }
  // Fit kMaxReplyLine with the CRLF; never cut a UTF-8 sequence in two.
  size_t room = kMaxReplyLine - 2 > prefix ? kMaxReplyLine - 2 - prefix : 0;
  if (text.size() > room) {
    size_t cut = room;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  size_t start = out.size();
  out.append(text);
  for (size_t i = start; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7F) out[i] = '?';
  }
  out.append("\r\n");
}

// Calls emit(line, is_last_in_text) for each line of `text` ("\n" or "\r\n" separated).
template <class Emit>
void forEachLine(std::string_view text, Emit emit) {
  if (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  }
  for (;;) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      emit(text, true);
      return;
    }
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    emit(line, false);
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

void appendReply(std::string& out, int code, std::string_view enhanced, std::string_view text) {
  forEachLine(text, [&](std::string_view line, bool last) { appendLine(out, code, enhanced, line, last); });
}

void appendReplyLines(std::string& out, int code, std::string_view enhanced, std::span<const std::string_view> lines) {
  if (lines.empty()) {
    appendLine(out, code, enhanced, {}, true);
    return;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    bool last_element = i + 1 == lines.size();
    forEachLine(lines[i],
                [&](std::string_view line, bool last) { appendLine(out, code, enhanced, line, last && last_element); });
  }
}

}  // namespace postern::smtp
