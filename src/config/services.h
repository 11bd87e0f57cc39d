// The service registry: which protocols a listener may speak, their canonical names and
// ports, and the old names still accepted (with a warning) so that renames never silently
// drop an operator's settings (DESIGN.md, first section).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::config {

enum class Service : uint8_t { kSmtp, kSubmission, kSubmissions, kImap, kImaps, kPop3, kPop3s, kMetrics };

struct ServiceInfo {
  Service service;
  std::string_view name;       // canonical, as in /etc/services
  uint16_t standard_port;
  bool implicit_tls;           // TLS from the first byte (465, 993, 995)
  bool offers_starttls;
  bool auth_required;          // MAIL needs AUTH first (submission services)
  bool implemented;            // false: reserved name, refused with a clear error
};

const ServiceInfo& serviceInfo(Service s);
const std::vector<ServiceInfo>& allServices();

struct ServiceLookup {
  const ServiceInfo* info = nullptr;   // null: unknown name
  bool deprecated_alias = false;       // e.g. "smtps" for "submissions"
  std::optional<std::string> suggestion;  // did-you-mean for unknown names
};
ServiceLookup lookupService(std::string_view name);

}  // namespace postern::config
