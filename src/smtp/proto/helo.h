// The EHLO/HELO argument: RFC 5321 §4.1.1.1 (`"EHLO" SP ( Domain / address-literal )`) and
// §4.1.4 (the client gives its primary host name, or an address literal when it has none),
// with the Domain syntax of §4.1.2 and the size limits of §4.5.3.1.2.
//
// The name ends up in the Received header (RFC 5321 §4.4) and in logs, so nothing but a
// name that passed this check may be kept. Pure function: it only looks at bytes in
// [arg.data(), arg.data() + arg.size()).
#pragma once

#include <string_view>

namespace postern::smtp {

// Returns the empty view when `arg` (the command argument, spaces around it already
// stripped) is a valid EHLO/HELO name, otherwise a fixed reason (static storage) for the
// 501 reply and the log. Accepted:
//   - a Domain: dot-separated labels of ASCII letters, digits and '-' (not first or last in
//     a label), at most 63 octets per label and 255 in all, no trailing dot. A single label
//     ("localhost", "mybox") is accepted, as real clients send it. '_' is accepted inside
//     labels: Windows machine names carry it and it is harmless in a trace header.
//   - an address literal: "[192.0.2.1]", "[IPv6:2001:db8::1]" (smtp/proto/address.h).
// Refused: anything else, including non-ASCII bytes, a second word, and ';' '(' ')' which
// would let a client forge the rest of the Received header.
std::string_view heloArgumentError(std::string_view arg);

}  // namespace postern::smtp
