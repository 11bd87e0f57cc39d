// RFC 5321 §2.3.8 / §4.5.3.1.4 command line framing.
#include "smtp/proto/line.h"

#include <cassert>
#include <cstring>

namespace postern::smtp {

LineResult nextLine(std::string_view buf, size_t max) {
  assert(max >= 2);
  // Only the first max - 1 bytes can hold a line's CR (the LF is then byte max).
  size_t scan = buf.size() < max ? buf.size() : max - 1;
  size_t i = 0;
  while (i < scan && buf[i] != '\r' && buf[i] != '\n') ++i;
  if (i == scan) {
    if (buf.size() >= max) return {LineStatus::kTooLong, {}, max - 1};
    return {LineStatus::kNeedMore, {}, 0};
  }
  std::string_view text = buf.substr(0, i);
  if (buf[i] == '\n') return {LineStatus::kBareNewline, text, i + 1};
  // A CR.
  if (i + 1 == buf.size()) return {LineStatus::kNeedMore, {}, 0};
  if (buf[i + 1] != '\n') return {LineStatus::kBareNewline, text, i + 1};
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return {LineStatus::kNul, text, i + 2};
  return {LineStatus::kLine, text, i + 2};
}

size_t discardUntilCrlf(std::string_view buf, bool& found) {
  found = false;
  size_t from = 0;
  while (from < buf.size()) {
    const void* p = std::memchr(buf.data() + from, '\n', buf.size() - from);
    if (p == nullptr) break;
    size_t lf = static_cast<size_t>(static_cast<const char*>(p) - buf.data());
    if (lf > 0 && buf[lf - 1] == '\r') {
      found = true;
      return lf + 1;
    }
    from = lf + 1;
  }
  if (!buf.empty() && buf.back() == '\r') return buf.size() - 1;
  return buf.size();
}

}  // namespace postern::smtp
