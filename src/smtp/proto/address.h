// SMTP mailbox and domain syntax: RFC 5321 §4.1.2 (Mailbox, Local-part, Dot-string,
// Quoted-string, Domain), §4.1.3 (address literals), §4.5.3.1 (size limits), extended by
// RFC 6531 §3.3 (UTF-8 in atext, qtextSMTP and U-label sub-domains).
//
// All functions are pure and only look at bytes in the given view; results point into it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace postern::smtp {

// DNS limits (RFC 1035 §2.3.4, restated by RFC 5321 §4.5.3.1.2). They apply to ASCII
// domains; a U-label is bounded by the command line length instead (its A-label may be
// shorter than its UTF-8 form).
inline constexpr size_t kMaxDomainLength = 255;
inline constexpr size_t kMaxLabelLength = 63;

// A parsed RFC 5321 Mailbox. Views point into the string given to parseMailbox.
struct Mailbox {
  std::string_view local_part;   // as sent: with the quotes and backslashes when quoted_local
  std::string_view domain;       // as sent: a Domain, or an address literal with its brackets
  bool quoted_local = false;     // Local-part is a Quoted-string
  bool address_literal = false;  // domain is "[...]"
  bool utf8 = false;             // contains non-ASCII (RFC 6531) anywhere
};

// Parses "local@domain" (RFC 5321 §4.1.2 Mailbox), e.g. "user@example.com",
// "\"a b\"@x.org", "u@[192.0.2.1]", "u@[IPv6:2001:db8::1]". With allow_utf8, UTF-8
// (well-formed, RFC 3629) is accepted where RFC 6531 allows it; otherwise any byte >= 0x80
// fails. Length limits on the local part (64, §4.5.3.1.1) are NOT enforced: RFC 5321
// §4.5.3.1 makes them minimums a server must accept, and real VERP addresses exceed 64.
std::optional<Mailbox> parseMailbox(std::string_view s, bool allow_utf8 = true);

// A Domain (dot-separated LDH labels, or U-labels when allow_utf8) or an address literal
// (§4.1.3: "[IPv4]" or "[IPv6:...]"; General-address-literal tags other than IPv6 are not
// registered with IANA and are rejected). No trailing dot.
bool isValidDomain(std::string_view d, bool allow_utf8 = true);

// "[192.0.2.1]", "[IPv6:2001:db8::1]" (the tag is case-insensitive), "[IPv6:::ffff:192.0.2.1]".
bool isValidAddressLiteral(std::string_view s);

// RFC 5321 §4.1.2 Dot-string: Atom *("." Atom), atext per RFC 5322 §3.2.3 (+ UTF-8).
bool isDotString(std::string_view s, bool allow_utf8 = true);

// Well-formed UTF-8 (RFC 3629 §4: no overlongs, no surrogates, <= U+10FFFF).
bool isValidUtf8(std::string_view s);
// Any byte >= 0x80 (an RFC 6531 address needs the SMTPUTF8 parameter).
bool hasNonAscii(std::string_view s);

// The local part as the octets it stands for: a Quoted-string without its quotes and with
// its quoted-pairs resolved (the local part of "a\"b"@x is a"b); an unquoted one as sent.
std::string unquotedLocalPart(const Mailbox& m);

// The form used for lookups: local part as sent when unquoted (the caller decides about
// case), quoted local part unquoted (quoted-pairs resolved) when the result is a valid
// Dot-string, otherwise kept quoted; "@"; domain with ASCII letters lowercased.
std::string canonicalAddress(const Mailbox& m);

}  // namespace postern::smtp
