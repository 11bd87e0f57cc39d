// The DNS lookups sender authentication needs (SPF, DKIM keys, DMARC and ARC records), as an
// interface: ResolverDns is the real one over dns::Resolver; StaticDns answers from an
// in-memory table for the verifiers' table tests, benchmarks and fuzz targets (the e2e tests
// use the real resolver against tests/e2e/dns_server.py).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dns/resolver.h"
#include "net/asio.h"
#include "util/ip.h"

namespace postern::auth {

class Dns {
 public:
  virtual ~Dns() = default;
  virtual net::awaitable<dns::TxtAnswer> txt(std::string name) = 0;
  virtual net::awaitable<dns::AddressAnswer> a(std::string host) = 0;      // A only
  virtual net::awaitable<dns::AddressAnswer> aaaa(std::string host) = 0;   // AAAA only
  virtual net::awaitable<dns::MxAnswer> mx(std::string domain) = 0;
  virtual net::awaitable<dns::NameAnswer> ptr(IpAddress address) = 0;
};

class ResolverDns final : public Dns {
 public:
  explicit ResolverDns(dns::Resolver& r) : r_(r) {}
  net::awaitable<dns::TxtAnswer> txt(std::string name) override { return dns::asyncTxt(r_, std::move(name)); }
  net::awaitable<dns::AddressAnswer> a(std::string host) override { return dns::asyncA(r_, std::move(host)); }
  net::awaitable<dns::AddressAnswer> aaaa(std::string host) override { return dns::asyncAaaa(r_, std::move(host)); }
  net::awaitable<dns::MxAnswer> mx(std::string domain) override { return dns::asyncMx(r_, std::move(domain)); }
  net::awaitable<dns::NameAnswer> ptr(IpAddress address) override { return dns::asyncPtr(r_, address); }

 private:
  dns::Resolver& r_;
};

// Answers from a table: name (lower case, no trailing dot) -> records. A name in no table
// is NXDOMAIN; a name present with no record of the asked type is NODATA; names listed in
// `tempfail` fail temporarily. Counts lookups so tests can check RFC 7208 §4.6.4 limits.
class StaticDns final : public Dns {
 public:
  std::map<std::string, std::vector<std::string>> txt_records;
  std::map<std::string, std::vector<IpAddress>> addresses;      // A and AAAA together; split by family
  std::map<std::string, std::vector<dns::MxHost>> mx_records;
  std::map<std::string, std::vector<std::string>> ptr_records;  // key: reverse name (dns::reverseName)
  std::vector<std::string> tempfail;
  size_t lookups = 0;

  net::awaitable<dns::TxtAnswer> txt(std::string name) override;
  net::awaitable<dns::AddressAnswer> a(std::string host) override;
  net::awaitable<dns::AddressAnswer> aaaa(std::string host) override;
  net::awaitable<dns::MxAnswer> mx(std::string domain) override;
  net::awaitable<dns::NameAnswer> ptr(IpAddress address) override;
};

}  // namespace postern::auth
