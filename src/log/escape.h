// Escaping of log values: JSON strings (RFC 8259 §7) and the quoted values of the text
// format. Client bytes end up in logs (EHLO names, addresses, AUTH user names, reasons),
// so both must hold any bytes: a JSON log line must stay valid UTF-8 (RFC 8259 §8.1,
// RFC 3629), or log shippers reject or mangle it.
//
// Pure functions: they only look at bytes in [v.data(), v.data() + v.size()).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace postern::log {

// Length of the well-formed UTF-8 sequence (RFC 3629 §4: no overlongs, no surrogates,
// <= U+10FFFF) that starts at v[i], or 0 when none does. REQUIRES: i < v.size().
size_t utf8SequenceAt(std::string_view v, size_t i);

// Appends `v` as the contents of a JSON string (without the quotes). '"', '\\' and the
// control characters are escaped; well-formed UTF-8 is copied; every byte that is not
// part of well-formed UTF-8 is written as the six characters \\xHH (a JSON-escaped
// backslash, then 'x' and two hex digits), so the result is always valid UTF-8.
void appendJsonEscaped(std::string& out, std::string_view v);

// Appends `v` for a quoted text-format value: '"', '\\' and the controls escaped, every
// byte >= 0x80 written as \u00HH. The result is plain ASCII.
void appendTextEscaped(std::string& out, std::string_view v);

}  // namespace postern::log
