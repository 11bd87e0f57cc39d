// `postern doctor` (DESIGN.md "Command line (contract)", docs/doctor.md): connects to every
// listener as a client would, directly or through the real load balancer, and prints one
// OK or FAIL line per listener. runDoctor() itself is declared in cli/commands.h; this header
// holds the pure pieces it is built from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/ip.h"
#include "util/status.h"

namespace postern::cli {

// One `--through [LISTENER=]HOST:PORT` argument.
struct ThroughSpec {
  std::string listener;  // empty: the configuration's only listener
  std::string host;      // a host name or an IP address (without brackets)
  uint16_t port = 0;
  std::string host_port;  // "HOST:PORT" as written, for the report
};

// Parses one --through value. IPv6 addresses need brackets ("[2001:db8::1]:465"). Pure.
Result<ThroughSpec> parseThrough(std::string_view arg);

// A PROXY protocol v2 header (haproxy doc/proxy-protocol.txt section 2.2): command PROXY,
// TCP over IPv4 or IPv6, no TLVs; `src` is the connection's client side, `dst` its server side.
// REQUIRES: src and dst are of the same address family.
std::string encodeProxyV2(const Endpoint& src, const Endpoint& dst);

}  // namespace postern::cli
