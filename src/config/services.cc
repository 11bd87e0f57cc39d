#include "config/services.h"

#include "util/strings.h"

namespace postern::config {

const std::vector<ServiceInfo>& allServices() {
  static const std::vector<ServiceInfo> kServices = {
      {Service::kSmtp, "smtp", 25, false, true, false, true},
      {Service::kSubmission, "submission", 587, false, true, true, true},
      {Service::kSubmissions, "submissions", 465, true, false, true, true},
      {Service::kImap, "imap", 143, false, true, true, false},
      {Service::kImaps, "imaps", 993, true, false, true, false},
      {Service::kPop3, "pop3", 110, false, true, true, false},
      {Service::kPop3s, "pop3s", 995, true, false, true, false},
      // HTTP: /metrics (Prometheus text format), /healthz, /readyz. 9465 is not an IANA port;
      // it sits in the range exporters use (prometheus/prometheus wiki, "Default port allocations").
      {Service::kMetrics, "metrics", 9465, false, false, false, true},
  };
  return kServices;
}

const ServiceInfo& serviceInfo(Service s) { return allServices()[static_cast<size_t>(s)]; }

ServiceLookup lookupService(std::string_view name) {
  ServiceLookup r;
  std::string n = toLower(name);
  for (const auto& s : allServices()) {
    if (s.name == n) {
      r.info = &s;
      return r;
    }
  }
  // RFC 8314 §7.3 re-registered port 465 as "submissions"; "smtps" and "ssmtp" are the
  // names it carried before and still appear in older configurations.
  if (n == "smtps" || n == "ssmtp") {
    r.info = &serviceInfo(Service::kSubmissions);
    r.deprecated_alias = true;
    return r;
  }
  std::vector<std::string> names;
  for (const auto& s : allServices()) names.emplace_back(s.name);
  names.emplace_back("smtps");
  r.suggestion = didYouMean(n, names);
  if (r.suggestion == "smtps") r.suggestion = "submissions";
  return r;
}

}  // namespace postern::config
