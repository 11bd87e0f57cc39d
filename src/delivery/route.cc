#include "delivery/route.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace postern::delivery {

std::string domainOf(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(address.substr(at + 1));
  if (!d.empty() && d.back() == '.') d.pop_back();
  for (char& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return d;
}

namespace {
bool listed(const std::vector<std::string>& domains, const std::string& d) {
  return !d.empty() && std::find(domains.begin(), domains.end(), d) != domains.end();
}
}  // namespace

Destination route(const std::vector<config::Route>& routes, std::string_view sender, std::string_view recipient,
                  uint16_t remote_port) {
  const std::string rd = domainOf(recipient), sd = domainOf(sender);
  for (const config::Route& r : routes) {
    bool match = r.matchesAll() || listed(r.recipient_domains, rd) || listed(r.sender_domains, sd);
    if (!match) continue;
    Destination d;
    d.tls = r.tls;
    if (r.relay_host.empty()) {
      d.domain = rd;
      d.port = remote_port;
      d.key = rd;
      if (r.tls != config::RouteTls::kMay) d.key += fmt::format("/{}", config::routeTlsName(r.tls));
      return d;
    }
    d.relay_host = r.relay_host;
    d.port = r.relay_port;
    d.auth_file = r.auth_file;
    d.ca_file = r.ca_file;
    d.key = fmt::format("[{}]:{}", r.relay_host, r.relay_port);
    return d;
  }
  Destination d;
  d.domain = rd;
  d.port = remote_port;
  d.key = rd;
  return d;
}

}  // namespace postern::delivery
