// Message text framing after DATA and BDAT.
//
// DATA: RFC 5321 §4.1.1.4 (the message ends with <CRLF>.<CRLF>; the CRLF of the DATA
// command counts as the first CRLF), §4.5.2 (transparency: the receiver deletes the first
// character of a line when it is a period), §2.3.8 (only CRLF ends a line; bare CR and bare
// LF are not line endings), §4.5.3.1.6 (a text line is at most 1000 octets with its CRLF,
// not counting a leading dot added for transparency), RFC 1870 §6 (size limit).
// BDAT: RFC 3030 §2 (chunks carry the message verbatim: no stuffing, no terminator).
//
// SMTP smuggling defence (the 2023 "<LF>.<LF>" family): only a real <CRLF>.<CRLF> in the
// input ends DATA. A '.' line reached through a bare CR or bare LF never does, in either
// mode, and every bare CR/LF leaves as CRLF, so the stored message has no line ending a
// downstream hop could read differently. Both modes produce the same output; the mode only
// decides whether bareNewline() (= "reject this message") is set.
//
// Line model used for unstuffing and line length: output lines. A line starts after a real
// CRLF ("hard" start: the only place a terminator is recognised) or after a bare CR/LF
// ("soft" start). At any line start a leading '.' is removed (§4.5.2), so "<LF>.<LF>"
// becomes an empty line, not a "." line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace postern::smtp {

enum class BareNewlines : uint8_t {
  kReject,     // bare CR/LF sets bareNewline(); the session rejects the message (554 5.6.0)
  kNormalize,  // bare CR/LF become CRLF and are only counted (bareNewline() stays false)
};

inline constexpr size_t kMaxTextLine = 1000;  // RFC 5321 §4.5.3.1.6, including CRLF

namespace detail {

// State shared by DataScanner and TextChecker: line length, bare newline accounting, output.
class TextState {
 public:
  bool bareNewline() const { return bare_newline_; }
  size_t bareNewlineCount() const { return bare_newline_count_; }
  bool lineTooLong() const { return line_too_long_; }
  bool sawNul() const { return saw_nul_; }
  uint64_t bytesOut() const { return bytes_out_; }        // bytes appended to `out`
  uint64_t messageSize() const { return message_size_; }  // message bytes, appended or not
  // When the message would exceed `limit` bytes, output stops at exactly `limit` bytes and
  // overLimit() is set; scanning goes on (the rest of the message must still be read).
  void setSizeLimit(uint64_t limit) { limit_ = limit; }
  bool overLimit() const { return over_limit_; }

 protected:
  TextState(BareNewlines mode, size_t max_line) : mode_(mode), max_line_(max_line) {}
  void resetText();
  void emit(const char* data, size_t len, std::string& out);
  void emitBareNewline(std::string& out);
  void resetLine() { line_len_ = 0; }
  void addToLine(size_t len) {
    line_len_ += len;
    if (max_line_ != 0 && line_len_ + 2 > max_line_) line_too_long_ = true;
  }
  // Scans text from in[i] in the middle of a line. Stops at the first line end:
  //   kCrlf: in[stop] is a CR followed by LF (nothing emitted; `run` still covers the text).
  //   kHeldCr: in[stop] is a CR and the last byte (text before it flushed).
  //   kBare: a bare CR or LF at in[stop] was emitted as CRLF (text before it flushed).
  //   kEnd: no line end before the end of `in`.
  // `lf` caches the position of the next LF (in.size() when none; start with kUnknownLf);
  // `run` is the start of the pending verbatim bytes.
  static constexpr size_t kUnknownLf = SIZE_MAX;
  enum class TextStop : uint8_t { kCrlf, kHeldCr, kBare, kEnd };
  TextStop scanText(std::string_view in, size_t i, size_t& stop, size_t& run, size_t& lf, std::string& out);
  void flush(std::string_view in, size_t& run, size_t end, std::string& out) {
    if (end > run) emit(in.data() + run, end - run, out);
    run = end;
  }
  void noteNul(std::string_view scanned);

  BareNewlines mode_;
  size_t max_line_;  // 0: no limit

 private:
  size_t line_len_ = 0;
  bool bare_newline_ = false;
  size_t bare_newline_count_ = 0;
  bool line_too_long_ = false;
  bool saw_nul_ = false;
  uint64_t bytes_out_ = 0;
  uint64_t message_size_ = 0;
  uint64_t limit_ = UINT64_MAX;
  bool over_limit_ = false;
};

}  // namespace detail

// Unstuffs DATA text and finds its end. Feed it the bytes after the DATA command's CRLF, in
// as many pieces as they arrive; the terminator and stuffing may be split at any byte.
class DataScanner : public detail::TextState {
 public:
  // max_line: longest line with its CRLF (0 = no limit).
  explicit DataScanner(BareNewlines mode, size_t max_line = kMaxTextLine);

  struct Result {
    size_t consumed = 0;  // bytes of `in` used; when done, through the terminator's LF
    bool done = false;    // the terminator was seen; bytes after it are not touched
  };
  // Appends the message bytes (unstuffed, CRLF line ends, terminator excluded) to `out`.
  // After done, further calls consume nothing and return done.
  Result feed(std::string_view in, std::string& out);
  bool done() const { return state_ == State::kDone; }
  // Back to the start of a message; keeps mode, line limit and size limit.
  void reset();

 private:
  enum class State : uint8_t {
    kHardStart,  // after a real CRLF (or at the start): ".<CRLF>" here ends the message
    kSoftStart,  // after a bare CR/LF: a leading dot is removed, nothing ends here
    kText,
    kCr,     // held CR (last byte of the previous input) in the middle of a line
    kDot,    // dropped the dot at a hard start
    kDotCr,  // dropped the dot at a hard start, then held a CR
    kDone,
  };
  State state_ = State::kHardStart;
};

// RFC 3030 BDAT text: no stuffing, no terminator; the same bare CR/LF policy, line length
// and NUL accounting as DataScanner, carried across chunk boundaries (a CR that ends a chunk
// waits for the next chunk's first byte).
class TextChecker : public detail::TextState {
 public:
  explicit TextChecker(BareNewlines mode, size_t max_line = kMaxTextLine);
  // Appends the chunk's bytes (bare CR/LF written as CRLF) to `out`. Always consumes all.
  void feed(std::string_view in, std::string& out);
  // After the LAST chunk: a CR still held is a bare CR.
  void finish(std::string& out);
  void reset();

 private:
  bool held_cr_ = false;
};

}  // namespace postern::smtp
