// The one-line explanations Postern logs when a load balancer and a listener disagree
// about the PROXY protocol (DESIGN.md, first section). Each names the fix.
#pragma once

#include <string>
#include <string_view>

#include "util/counters.h"

namespace postern::proxy {

// Listener has proxy_protocol = "off" but the peer sent a PROXY header.
std::string fixForUnexpectedHeader(std::string_view listener, unsigned port);
// Listener expects a header from this (trusted) peer but something else arrived.
std::string fixForMissingHeader();
// A header arrived where none is expected (listener "off", or "mixed" and the peer is not
// trusted): the event and counter name to use, and the fix. Used by the connection (implicit
// TLS, before the handshake) and by the SMTP session (server-first, after the greeting).
struct HeaderMismatch {
  EventId event;   // "proxy.unexpected_header" | "proxy.untrusted_header"
  std::string fix;
};
HeaderMismatch headerWhereNoneExpected(bool listener_off, std::string_view listener, unsigned port);

// A header arrived from an address outside trusted_networks.
std::string fixForUntrustedHeader(std::string_view listener);
// A required listener was reached directly by an address outside trusted_networks.
std::string fixForUntrustedPeer(std::string_view listener);

}  // namespace postern::proxy
