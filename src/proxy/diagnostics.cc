#include "proxy/diagnostics.h"

#include <fmt/format.h>

namespace postern::proxy {

std::string fixForUnexpectedHeader(std::string_view listener, unsigned port) {
  return fmt::format("the peer sends PROXY headers: set proxy_protocol = \"required\" (or \"mixed\") on listener '{}' "
                     "(port {}) and list the load balancer in trusted_networks, or stop sending them",
                     listener, port);
}

std::string fixForMissingHeader() {
  return "the load balancer is not sending PROXY headers: send-proxy-v2 in HAProxy, proxy_protocol in NGINX, "
         "proxyProtocol in Traefik (or set proxy_protocol = \"off\" on this listener)";
}

HeaderMismatch headerWhereNoneExpected(bool listener_off, std::string_view listener, unsigned port) {
  if (listener_off) return {"proxy.unexpected_header", fixForUnexpectedHeader(listener, port)};
  return {"proxy.untrusted_header", fixForUntrustedHeader(listener)};
}

std::string fixForUntrustedHeader(std::string_view listener) {
  return fmt::format("only addresses in trusted_networks may send PROXY headers; if this peer is your load balancer, "
                     "add it to trusted_networks of listener '{}', otherwise it is trying to spoof client addresses",
                     listener);
}

std::string fixForUntrustedPeer(std::string_view listener) {
  return fmt::format("listener '{}' requires PROXY headers from trusted_networks; this address is not in them (add the "
                     "load balancer's address, or use proxy_protocol = \"mixed\" to also serve direct clients)",
                     listener);
}

}  // namespace postern::proxy
