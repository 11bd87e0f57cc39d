// SMTP replies: RFC 5321 §4.2 (Reply-line = *( Reply-code "-" [ textstring ] CRLF )
// Reply-code [ SP textstring ] CRLF), §4.5.3.1.5 (a reply line is at most 512 octets, CRLF
// included), RFC 2034 §4 (the enhanced status code follows the reply code on every line of
// a multi-line reply, e.g. "250-2.0.0 first\r\n250 2.0.0 last\r\n").
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace postern::smtp {

inline constexpr size_t kMaxReplyLine = 512;  // RFC 5321 §4.5.3.1.5, including CRLF

// Appends a complete reply to `out`. `text` may hold several lines separated by "\n" or
// "\r\n" (one trailing newline is ignored); each becomes a reply line. `enhanced` ("2.1.0")
// may be empty (greeting, EHLO, 334, 354). With empty text and no enhanced code the line is
// "334 \r\n" (RFC 4954 §4 needs the SP). Other control characters in the text become '?'
// (a reply can never be split or forged by text that came from the client), and lines are
// cut at a UTF-8 boundary to fit kMaxReplyLine.
// REQUIRES: 200 <= code <= 599; enhanced empty or of the same class as code.
void appendReply(std::string& out, int code, std::string_view enhanced, std::string_view text);

// Same, one element per line (EHLO keywords). An empty span gives a single line.
void appendReplyLines(std::string& out, int code, std::string_view enhanced, std::span<const std::string_view> lines);

}  // namespace postern::smtp
