#include "auth/dns.h"

#include <algorithm>

#include "dns/message.h"

namespace postern::auth {
namespace {

// Table keys are lower case without a trailing dot, as normalizeName writes them.
std::string key(const std::string& name) {
  auto n = dns::normalizeName(name);
  return n ? *n : std::string();
}

bool failing(const StaticDns& d, const std::string& k) {
  return std::find(d.tempfail.begin(), d.tempfail.end(), k) != d.tempfail.end();
}

// NXDOMAIN unless the name has records of some type in some table.
bool exists(const StaticDns& d, const std::string& k) {
  if (d.txt_records.count(k) || d.mx_records.count(k) || d.ptr_records.count(k)) return true;
  return d.addresses.count(k) > 0;
}

template <class Answer>
bool early(const StaticDns& d, const std::string& k, Answer& a) {
  if (k.empty()) {
    a.outcome = dns::Outcome::kPermFail;
    a.error = "invalid name";
    return true;
  }
  if (failing(d, k)) {
    a.outcome = dns::Outcome::kTempFail;
    a.error = "timeout";
    return true;
  }
  if (!exists(d, k)) {
    a.outcome = dns::Outcome::kNxDomain;
    return true;
  }
  return false;
}

dns::AddressAnswer family(StaticDns& d, const std::string& host, bool v4) {
  ++d.lookups;
  dns::AddressAnswer a;
  std::string k = key(host);
  if (early(d, k, a)) return a;
  if (auto it = d.addresses.find(k); it != d.addresses.end())
    for (const IpAddress& ip : it->second)
      if (ip.isV4() == v4) a.addresses.push_back(ip);
  a.outcome = a.addresses.empty() ? dns::Outcome::kNoData : dns::Outcome::kOk;
  return a;
}

}  // namespace

net::awaitable<dns::TxtAnswer> StaticDns::txt(std::string name) {
  ++lookups;
  dns::TxtAnswer a;
  std::string k = key(name);
  if (early(*this, k, a)) co_return a;
  if (auto it = txt_records.find(k); it != txt_records.end()) a.records = it->second;
  a.outcome = a.records.empty() ? dns::Outcome::kNoData : dns::Outcome::kOk;
  co_return a;
}

net::awaitable<dns::AddressAnswer> StaticDns::a(std::string host) { co_return family(*this, host, true); }

net::awaitable<dns::AddressAnswer> StaticDns::aaaa(std::string host) { co_return family(*this, host, false); }

net::awaitable<dns::MxAnswer> StaticDns::mx(std::string domain) {
  ++lookups;
  dns::MxAnswer a;
  std::string k = key(domain);
  if (early(*this, k, a)) co_return a;
  if (auto it = mx_records.find(k); it != mx_records.end()) a.hosts = it->second;
  a.null_mx = a.hosts.size() == 1 && a.hosts[0].host == ".";
  a.outcome = a.hosts.empty() ? dns::Outcome::kNoData : dns::Outcome::kOk;
  co_return a;
}

net::awaitable<dns::NameAnswer> StaticDns::ptr(IpAddress address) {
  ++lookups;
  dns::NameAnswer a;
  std::string k = dns::reverseName(address);
  if (failing(*this, k)) {
    a.error = "timeout";
    co_return a;
  }
  auto it = ptr_records.find(k);
  if (it == ptr_records.end()) {
    a.outcome = dns::Outcome::kNxDomain;
    co_return a;
  }
  a.names = it->second;
  a.outcome = a.names.empty() ? dns::Outcome::kNoData : dns::Outcome::kOk;
  co_return a;
}

}  // namespace postern::auth
