// Where mail for a remote recipient goes: the first [[route]] (config.h) whose recipient or
// sender domains match, else the MX hosts of the recipient's domain. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace postern::delivery {

// A delivery destination: one queue, one concurrency window, one set of reusable connections.
struct Destination {
  std::string key;         // "example.org" (MX) or "[smtp.example.net]:587" (relay), for logs and grouping
  std::string domain;      // MX delivery: the domain whose MX hosts are looked up
  std::string relay_host;  // relay: host name or IP literal
  uint16_t port = 25;
  config::RouteTls tls = config::RouteTls::kMay;
  std::string auth_file;   // relay credentials
  std::string ca_file;
  bool relay() const { return !relay_host.empty(); }
};

// The domain of an address ("user@Example.ORG" -> "example.org"); empty when there is none.
std::string domainOf(std::string_view address);

// `remote_port` is the port of MX hosts ([queue] remote_port).
Destination route(const std::vector<config::Route>& routes, std::string_view sender, std::string_view recipient,
                  uint16_t remote_port);

}  // namespace postern::delivery
