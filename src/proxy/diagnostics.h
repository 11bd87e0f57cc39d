// The one-line explanations Postern logs when a load balancer and a listener disagree
// about the PROXY protocol (DESIGN.md, first section). Each names the fix.
#pragma once

#include <string>
#include <string_view>

namespace postern::proxy {

// Listener has proxy_protocol = "off" but the peer sent a PROXY header.
std::string fixForUnexpectedHeader(std::string_view listener, unsigned port);
// Listener expects a header from this (trusted) peer but something else arrived.
std::string fixForMissingHeader();
// A header arrived from an address outside trusted_networks.
std::string fixForUntrustedHeader(std::string_view listener);
// A required listener was reached directly by an address outside trusted_networks.
std::string fixForUntrustedPeer(std::string_view listener);

}  // namespace postern::proxy
