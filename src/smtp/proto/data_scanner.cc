// RFC 5321 §4.1.1.4 / §4.5.2 DATA framing and RFC 3030 §2 BDAT text checks.
//
// Speed: text between line ends is never looked at byte by byte. scanText() finds the next
// LF with memchr, then looks for a CR only before it, and bytes that pass through unchanged
// are appended in one run per call (a run is broken only by a removed dot or a bare CR/LF).
#include "smtp/proto/data_scanner.h"

#include <cstring>

namespace postern::smtp {
namespace detail {

void TextState::resetText() {
  line_len_ = 0;
  bare_newline_ = false;
  bare_newline_count_ = 0;
  line_too_long_ = false;
  saw_nul_ = false;
  bytes_out_ = 0;
  message_size_ = 0;
  over_limit_ = false;
}

void TextState::emit(const char* data, size_t len, std::string& out) {
  message_size_ += len;
  if (over_limit_) return;
  const uint64_t room = limit_ > bytes_out_ ? limit_ - bytes_out_ : 0;  // the limit may have been lowered
  if (len > room) {
    len = static_cast<size_t>(room);
    over_limit_ = true;
  }
  out.append(data, len);
  bytes_out_ += len;
}

void TextState::emitBareNewline(std::string& out) {
  ++bare_newline_count_;
  if (mode_ == BareNewlines::kReject) bare_newline_ = true;
  emit("\r\n", 2, out);
  line_len_ = 0;
}

void TextState::noteNul(std::string_view scanned) {
  if (!saw_nul_ && !scanned.empty() && std::memchr(scanned.data(), '\0', scanned.size()) != nullptr) saw_nul_ = true;
}

TextState::TextStop TextState::scanText(std::string_view in, size_t i, size_t& stop, size_t& run, size_t& lf,
                                        std::string& out) {
  const char* p = in.data();
  const size_t n = in.size();
  if (lf == kUnknownLf || lf < i) {
    const void* hit = std::memchr(p + i, '\n', n - i);
    lf = hit != nullptr ? static_cast<size_t>(static_cast<const char*>(hit) - p) : n;
  }
  const void* cr_hit = std::memchr(p + i, '\r', lf - i);
  if (cr_hit != nullptr) {
    size_t cr = static_cast<size_t>(static_cast<const char*>(cr_hit) - p);
    addToLine(cr - i);
    stop = cr;
    if (cr + 1 == n) {
      flush(in, run, cr, out);
      return TextStop::kHeldCr;
    }
    if (p[cr + 1] == '\n') {
      line_len_ = 0;
      return TextStop::kCrlf;
    }
    flush(in, run, cr, out);
    emitBareNewline(out);
    run = cr + 1;
    return TextStop::kBare;
  }
  if (lf < n) {  // a LF with no CR before it
    addToLine(lf - i);
    stop = lf;
    flush(in, run, lf, out);
    emitBareNewline(out);
    run = lf + 1;
    return TextStop::kBare;
  }
  addToLine(n - i);
  stop = n;
  return TextStop::kEnd;
}

}  // namespace detail

DataScanner::DataScanner(BareNewlines mode, size_t max_line) : TextState(mode, max_line) {}

void DataScanner::reset() {
  resetText();
  state_ = State::kHardStart;
}

DataScanner::Result DataScanner::feed(std::string_view in, std::string& out) {
  if (state_ == State::kDone) return {0, true};
  const char* p = in.data();
  const size_t n = in.size();
  size_t i = 0;
  size_t run = 0;          // start of bytes to append verbatim
  size_t lf = kUnknownLf;  // next LF at or after the scan position, n if none
  while (i < n) {
    switch (state_) {
      case State::kHardStart:
      case State::kSoftStart:
        if (p[i] == '.') {  // §4.5.2: drop the first dot of a line
          flush(in, run, i, out);
          run = ++i;
          state_ = state_ == State::kHardStart ? State::kDot : State::kText;
        } else {
          state_ = State::kText;
        }
        break;
      case State::kDot:
        // ".<CRLF>" at a hard line start is the end (§4.1.1.4); anything else is text, and a
        // CR here that is not followed by LF is a bare CR handled in kText.
        if (p[i] == '\r') {
          if (i + 1 == n) {
            run = i + 1;  // the CR is held, not emitted
            i = n;
            state_ = State::kDotCr;
            break;
          }
          if (p[i + 1] == '\n') {
            i += 2;
            state_ = State::kDone;
            noteNul(in.substr(0, i));
            return {i, true};
          }
        }
        state_ = State::kText;
        break;
      case State::kDotCr:  // i == 0: the byte after ".<CR>"
        if (p[i] == '\n') {
          state_ = State::kDone;
          return {1, true};
        }
        emitBareNewline(out);  // the held CR was bare
        state_ = State::kSoftStart;
        break;
      case State::kCr:  // i == 0: the byte after a held CR
        if (p[i] == '\n') {
          emit("\r\n", 2, out);
          resetLine();
          run = ++i;
          state_ = State::kHardStart;
        } else {
          emitBareNewline(out);
          state_ = State::kSoftStart;
        }
        break;
      case State::kText: {
        size_t stop = 0;
        switch (scanText(in, i, stop, run, lf, out)) {
          case TextStop::kCrlf:
            i = stop + 2;
            state_ = State::kHardStart;
            break;
          case TextStop::kHeldCr:
            run = n;
            i = n;
            state_ = State::kCr;
            break;
          case TextStop::kBare:
            i = stop + 1;
            state_ = State::kSoftStart;
            break;
          case TextStop::kEnd: i = n; break;
        }
        break;
      }
      case State::kDone: return {i, true};  // not reached: kDone is only set right before returning
    }
  }
  flush(in, run, n, out);
  noteNul(in);
  return {n, false};
}

TextChecker::TextChecker(BareNewlines mode, size_t max_line) : TextState(mode, max_line) {}

void TextChecker::reset() {
  resetText();
  held_cr_ = false;
}

void TextChecker::feed(std::string_view in, std::string& out) {
  const size_t n = in.size();
  size_t i = 0;
  size_t run = 0;
  if (held_cr_ && n > 0) {
    held_cr_ = false;
    if (in[0] == '\n') {
      emit("\r\n", 2, out);
      resetLine();
      run = i = 1;
    } else {
      emitBareNewline(out);
    }
  }
  size_t lf = kUnknownLf;
  while (i < n) {
    size_t stop = 0;
    switch (scanText(in, i, stop, run, lf, out)) {
      case TextStop::kCrlf: i = stop + 2; break;
      case TextStop::kHeldCr:
        held_cr_ = true;
        run = i = n;
        break;
      case TextStop::kBare: i = stop + 1; break;
      case TextStop::kEnd: i = n; break;
    }
  }
  flush(in, run, n, out);
  noteNul(in);
}

void TextChecker::finish(std::string& out) {
  if (held_cr_) {
    held_cr_ = false;
    emitBareNewline(out);
  }
}

}  // namespace postern::smtp
