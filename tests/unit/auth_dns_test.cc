// auth::StaticDns, the in-memory DNS of the verifiers' table tests.
#include <gtest/gtest.h>
#include "auth/dns.h"
#include "run_sync.h"
using namespace postern;
TEST(StaticDnsT, Basic) {
  auth::StaticDns d;
  d.txt_records["example.org"] = {"v=spf1 -all"};
  d.addresses["example.org"] = {*IpAddress::parse("192.0.2.1")};
  auto t = test::runSync(d.txt("Example.Org."));
  EXPECT_EQ(t.outcome, dns::Outcome::kOk);
  EXPECT_EQ(test::runSync(d.aaaa("example.org")).outcome, dns::Outcome::kNoData);
  EXPECT_EQ(test::runSync(d.txt("nx.example")).outcome, dns::Outcome::kNxDomain);
}
