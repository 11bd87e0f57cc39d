// SMTP command line framing: RFC 5321 §2.3.8 (lines end with CRLF only; a bare CR or LF
// is not a line ending) and §4.5.3.1.4 (a command line is at most 512 octets, CRLF
// included). RFC 2920 pipelining means several lines may sit in one buffer: nextLine()
// takes the first and says how many bytes it used.
//
// Pure functions over bytes: they only look at bytes in [buf.data(), buf.data() + buf.size()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace postern::smtp {

inline constexpr size_t kMaxCommandLine = 512;  // RFC 5321 §4.5.3.1.4, including CRLF

enum class LineStatus : uint8_t {
  kNeedMore,     // no complete line yet: read more and call again with the grown buffer
  kLine,         // `line` is a complete command line (without its CRLF)
  kTooLong,      // more than `max` octets without CRLF: drop `consumed`, then discardUntilCrlf()
  kBareNewline,  // a LF not preceded by CR, or a CR followed by something other than LF:
                 // drop `consumed`, then discardUntilCrlf() (the whole line is refused)
  kNul,          // a complete line that contains a NUL octet
};

struct LineResult {
  LineStatus status = LineStatus::kNeedMore;
  // kLine, kNul: the line without CRLF. kBareNewline: the text before the bare CR/LF (for
  // logs). Otherwise empty. Points into `buf`.
  std::string_view line;
  // Bytes of `buf` the caller must drop before the next call:
  //   kNeedMore: 0.
  //   kLine, kNul: through the CRLF (the whole line).
  //   kBareNewline: through the bare LF or bare CR; the rest of the line, up to its CRLF,
  //     must then be dropped with discardUntilCrlf() and never read as a command.
  //   kTooLong: a prefix of the over-long line that never contains its CR, so the line's
  //     CRLF stays in the buffer for discardUntilCrlf() to find.
  size_t consumed = 0;
};

// Finds the first command line in `buf`. Only CRLF ends a line. A CR as the last byte of
// `buf` waits for the next byte (kNeedMore), unless the line is already too long.
// Checks, in order of position: the first CR/LF decides between kLine, kBareNewline and
// kNeedMore; a line whose CRLF would end beyond `max` octets is kTooLong (even when a bare
// newline or NUL comes later in it); a NUL inside an otherwise good line gives kNul.
// REQUIRES: max >= 2. Never allocates.
LineResult nextLine(std::string_view buf, size_t max = kMaxCommandLine);

// After kTooLong or kBareNewline: the number of leading bytes of `buf` to drop while discarding the rest
// of the over-long line. Sets `found` when that includes the line's CRLF (the caller then
// replies and returns to nextLine()); otherwise keeps a trailing CR in `buf`, because it
// may pair with a LF that has not arrived yet. Bare LFs inside the discarded line do not
// end it.
size_t discardUntilCrlf(std::string_view buf, bool& found);

}  // namespace postern::smtp
