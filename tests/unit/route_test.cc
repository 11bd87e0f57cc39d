// [[route]] configuration and the routing decision (delivery/route.h).
#include <gtest/gtest.h>

#include <fstream>

#include "config/config.h"
#include "delivery/route.h"

namespace postern::delivery {
namespace {

class RouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/route_test";
    std::system(("mkdir -p " + dir_).c_str());
    std::ofstream(dir_ + "/accounts.cf") << "";
    std::ofstream(dir_ + "/relay-auth") << "user:secret\n";
  }
  config::LoadResult load(const std::string& routes) {
    // The snippet first: a top-level key such as `route = 5` must not fall into a table.
    std::string text = "hostname = \"mail.example.test\"\ndata_dir = \"data\"\n" + routes +
                       "\n[directory]\naccounts = \"accounts.cf\"\n[[listener]]\nservice = \"smtp\"\naddress = \"127.0.0.1:25\"\n";
    return config::loadFromString(text, dir_ + "/postern.toml");
  }
  static std::string joined(const config::LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics) out += d.toString() + "\n";
    return out;
  }
  std::string dir_;
};

TEST_F(RouteTest, NoRoutesMeansMxOfTheRecipientDomain) {
  auto r = load("");
  ASSERT_TRUE(r.config) << joined(r);
  Destination d = route(r.config->routes, "a@here.test", "Bob@Example.ORG", 25);
  EXPECT_FALSE(d.relay());
  EXPECT_EQ(d.domain, "example.org");
  EXPECT_EQ(d.key, "example.org");
  EXPECT_EQ(d.port, 25);
  EXPECT_EQ(d.tls, config::RouteTls::kMay);
}

TEST_F(RouteTest, FirstMatchWinsByRecipientThenSenderThenDefault) {
  auto r = load(R"(
[[route]]
recipient_domains = ["Partner.example"]
relay = "[192.0.2.7]:2525"
tls = "none"
[[route]]
sender_domains = ["newsletter.test"]
relay = "smtp.mailer.test:587"
auth_file = "relay-auth"
[[route]]
recipient_domains = ["strict.example"]
tls = "verify"
[[route]]
relay = "smarthost.test:465"
)");
  ASSERT_TRUE(r.config) << joined(r);
  ASSERT_EQ(r.config->routes.size(), 4u);
  const auto& routes = r.config->routes;

  Destination p = route(routes, "x@newsletter.test", "a@partner.example", 25);
  EXPECT_EQ(p.relay_host, "192.0.2.7");
  EXPECT_EQ(p.port, 2525);
  EXPECT_EQ(p.tls, config::RouteTls::kNone);
  EXPECT_EQ(p.key, "[192.0.2.7]:2525");

  Destination s = route(routes, "x@newsletter.test", "a@other.example", 25);
  EXPECT_EQ(s.relay_host, "smtp.mailer.test");
  EXPECT_EQ(s.port, 587);
  EXPECT_EQ(s.tls, config::RouteTls::kStartTls);   // a relay defaults to checked STARTTLS
  EXPECT_EQ(s.auth_file, dir_ + "/relay-auth");

  Destination v = route(routes, "x@here.test", "a@strict.example", 2525);
  EXPECT_FALSE(v.relay());
  EXPECT_EQ(v.tls, config::RouteTls::kVerify);
  EXPECT_EQ(v.port, 2525);
  EXPECT_EQ(v.key, "strict.example/verify");   // its own destination: not shared with a "may" route

  Destination def = route(routes, "x@here.test", "a@anywhere.example", 25);
  EXPECT_EQ(def.relay_host, "smarthost.test");
  EXPECT_EQ(def.tls, config::RouteTls::kImplicit);   // port 465: TLS from the first byte
}

TEST_F(RouteTest, NullSenderRoutesByRecipient) {
  auto r = load("[[route]]\nsender_domains = [\"here.test\"]\nrelay = \"relay.test:25\"\ntls = \"may\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_FALSE(route(r.config->routes, "", "a@example.org", 25).relay());
  EXPECT_TRUE(route(r.config->routes, "me@here.test", "a@example.org", 25).relay());
}

struct BadRoute {
  const char* toml;
  const char* message;
};

class RouteErrors : public RouteTest, public ::testing::WithParamInterface<BadRoute> {};

TEST_P(RouteErrors, AreReportedWithPosition) {
  auto r = load(GetParam().toml);
  EXPECT_FALSE(r.config);
  std::string all = joined(r);
  EXPECT_NE(all.find(GetParam().message), std::string::npos) << all;
  EXPECT_NE(all.find("postern.toml:"), std::string::npos) << all;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RouteErrors,
    ::testing::Values(
        BadRoute{"[[route]]\nrelays = \"x:25\"\n", "unknown setting 'relays' in [[route]] (did you mean 'relay'?)"},
        BadRoute{"[[route]]\nrelay = \"host:99999\"\n", "is not host:port"},
        BadRoute{"[[route]]\nrelay = \"bad host:25\"\n", "is not host:port"},
        BadRoute{"[[route]]\nrecipient_domains = []\n", "must be a non-empty array"},
        BadRoute{"[[route]]\nrecipient_domains = [\"a..b\"]\n", "is not a domain name"},
        BadRoute{"[[route]]\nrecipient_domains = [\"a.test\"]\nsender_domains = [\"b.test\"]\n", "not both"},
        BadRoute{"[[route]]\ntls = \"sometimes\"\n", "'tls' must be none, may, encrypt, verify, dane, starttls or implicit"},
        BadRoute{"[[route]]\nrelay = \"r.test:25\"\ntls = \"mta-sts\"\n", "is for MX delivery; a relay takes"},
        BadRoute{"[[route]]\nrelay = \"r.test:25\"\ntls = \"dane\"\n", "'tls = \"dane\"' is for MX delivery"},
        BadRoute{"[[route]]\ntls = \"implicit\"\n", "needs a 'relay'"},
        BadRoute{"[[route]]\nauth_file = \"relay-auth\"\n", "'auth_file' needs a 'relay'"},
        BadRoute{"[[route]]\nrelay = \"r.test:587\"\nauth_file = \"missing\"\n", "cannot read relay credentials"},
        BadRoute{"route = 5\n", "must be written as [[route]] tables"},
        BadRoute{"[queue]\nremote_port = 0\n", "'remote_port' must be a port"},
        BadRoute{"[queue]\ndestination_concurrency = 0\n", "'destination_concurrency' must be at least 1"}));

TEST_F(RouteTest, PasswordWithoutTlsWarns) {
  auto r = load("[[route]]\nrelay = \"r.test:587\"\ntls = \"may\"\nauth_file = \"relay-auth\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  EXPECT_NE(joined(r).find("without required TLS"), std::string::npos);
}

TEST_F(RouteTest, DaneIsAnMxTlsLevel) {
  auto r = load("[[route]]\nrecipient_domains = [\"a.test\"]\ntls = \"dane\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  ASSERT_EQ(r.config->routes.size(), 1u);
  EXPECT_EQ(r.config->routes[0].tls, config::RouteTls::kDane);
  EXPECT_NE(config::describe(*r.config).find("tls=dane"), std::string::npos) << config::describe(*r.config);
}

TEST_F(RouteTest, ConfigShowListsRoutes) {
  auto r = load("[[route]]\nrecipient_domains = [\"a.test\"]\nrelay = \"r.test:587\"\nauth_file = \"relay-auth\"\n");
  ASSERT_TRUE(r.config) << joined(r);
  std::string shown = config::describe(*r.config);
  EXPECT_NE(shown.find("route: recipient_domains=a.test via=r.test:587 tls=starttls auth=yes"), std::string::npos) << shown;
  EXPECT_NE(shown.find("queue.remote_port: 25"), std::string::npos);
}

}  // namespace
}  // namespace postern::delivery
