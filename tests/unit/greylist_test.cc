// Greylisting without a server: the decision table under an injected clock, network
// grouping, exemptions, eviction, and the state file (format, damaged lines, round trip).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "protect/greylist.h"
#include "protect/greylist_file.h"

namespace postern::protect {
namespace {

using Outcome = Greylist::Outcome;

class GreylistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/greylist_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg_.delay_ms = 300'000;                  // 5 minutes
    cfg_.retry_window_ms = 24 * 3600'000;     // 1 day
    cfg_.pass_lifetime_ms = 36ull * 86400'000;
    cfg_.auto_allow = 0;
  }
  std::unique_ptr<Greylist> make() {
    return std::make_unique<Greylist>(cfg_, dir_ + "/greylist", counters_, [this] { return now_; });
  }
  static IpAddress ip(const char* s) { return *IpAddress::parse(s); }
  std::string readState() {
    std::ifstream f(dir_ + "/greylist");
    std::stringstream text;
    text << f.rdbuf();
    return text.str();
  }

  config::Greylist cfg_;
  Counters counters_;
  std::string dir_;
  int64_t now_ = 1'700'000'000;
};

// One row: seconds after the previous step, the client, and what the check must say.
struct Step {
  int64_t after;
  const char* client;
  Outcome outcome;
  int64_t retry_in = 0;
};

TEST_F(GreylistTest, DecisionTable) {
  struct Case {
    const char* name;
    std::vector<Step> steps;
  };
  const std::vector<Case> cases = {
      {"first attempt is deferred for the whole delay", {{0, "203.0.113.5", Outcome::kDefer, 300}}},
      {"a retry too early is deferred for the rest",
       {{0, "203.0.113.5", Outcome::kDefer, 300}, {120, "203.0.113.5", Outcome::kDefer, 180}}},
      {"a retry after the delay passes, and later ones too",
       {{0, "203.0.113.5", Outcome::kDefer, 300},
        {300, "203.0.113.5", Outcome::kPass},
        {86400 * 30, "203.0.113.5", Outcome::kPass}}},
      {"a retry after the window starts over",
       {{0, "203.0.113.5", Outcome::kDefer, 300}, {86400 + 1, "203.0.113.5", Outcome::kDefer, 300}}},
      {"a pass unused for longer than pass_lifetime is forgotten",
       {{0, "203.0.113.5", Outcome::kDefer, 300},
        {600, "203.0.113.5", Outcome::kPass},
        {36 * 86400 + 1, "203.0.113.5", Outcome::kDefer, 300}}},
      {"a pass used within pass_lifetime is kept (lifetime runs from the last use)",
       {{0, "203.0.113.5", Outcome::kDefer, 300},
        {600, "203.0.113.5", Outcome::kPass},
        {30 * 86400, "203.0.113.5", Outcome::kPass},
        {30 * 86400, "203.0.113.5", Outcome::kPass}}},
      {"IPv4: another address of the same /24 shares the triplet",
       {{0, "203.0.113.5", Outcome::kDefer, 300}, {300, "203.0.113.200", Outcome::kPass}}},
      {"IPv4: another /24 does not",
       {{0, "203.0.113.5", Outcome::kDefer, 300}, {300, "203.0.114.5", Outcome::kDefer, 300}}},
      {"IPv6: another address of the same /64 shares the triplet",
       {{0, "2001:db8:1:2::1", Outcome::kDefer, 300}, {300, "2001:db8:1:2:ffff::9", Outcome::kPass}}},
      {"IPv6: another /64 does not",
       {{0, "2001:db8:1:2::1", Outcome::kDefer, 300}, {300, "2001:db8:1:3::1", Outcome::kDefer, 300}}},
      {"IPv4-mapped IPv6 is the IPv4 client",
       {{0, "::ffff:203.0.113.5", Outcome::kDefer, 300}, {300, "203.0.113.9", Outcome::kPass}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto g = make();
    now_ = 1'700'000'000;
    for (size_t i = 0; i < c.steps.size(); ++i) {
      const Step& s = c.steps[i];
      SCOPED_TRACE(i);
      now_ += s.after;
      auto d = g->check(ip(s.client), false, "sender@example.org", "user@example.com");
      EXPECT_EQ(d.outcome, s.outcome);
      if (s.outcome == Outcome::kDefer) {
        EXPECT_EQ(d.retry_in, s.retry_in);
      }
    }
  }
}

TEST_F(GreylistTest, SenderAndRecipientAreEachPartOfTheTriplet) {
  auto g = make();
  auto client = ip("198.51.100.7");
  EXPECT_EQ(g->check(client, false, "a@example.org", "u@example.com").outcome, Outcome::kDefer);
  now_ += 400;
  EXPECT_EQ(g->check(client, false, "b@example.org", "u@example.com").outcome, Outcome::kDefer);
  EXPECT_EQ(g->check(client, false, "a@example.org", "v@example.com").outcome, Outcome::kDefer);
  EXPECT_EQ(g->check(client, false, "", "u@example.com").outcome, Outcome::kDefer);   // the null sender
  auto d = g->check(client, false, "a@example.org", "u@example.com");
  EXPECT_EQ(d.outcome, Outcome::kPass);
  EXPECT_TRUE(d.first_pass);
  EXPECT_EQ(d.waited, 400);
  EXPECT_FALSE(g->check(client, false, "a@example.org", "u@example.com").first_pass);
}

TEST_F(GreylistTest, ExemptClientsAreNeitherDeferredNorRecorded) {
  auto g = make();
  EXPECT_EQ(g->check(ip("203.0.113.5"), true, "s@example.org", "u@example.com").outcome, Outcome::kExempt);
  EXPECT_EQ(g->size(), 0u);
  // Exemption does not count as a first attempt.
  EXPECT_EQ(g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com").outcome, Outcome::kDefer);
}

TEST_F(GreylistTest, PrefixesAreConfigurable) {
  cfg_.ipv4_prefix = 32;
  cfg_.ipv6_prefix = 48;
  auto g = make();
  EXPECT_EQ(g->networkOf(ip("203.0.113.5")), "203.0.113.5/32");
  EXPECT_EQ(g->networkOf(ip("2001:db8:1:2::1")), "2001:db8:1::/48");
  g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com");
  now_ += 300;
  EXPECT_EQ(g->check(ip("203.0.113.6"), false, "s@example.org", "u@example.com").outcome, Outcome::kDefer);
  EXPECT_EQ(g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com").outcome, Outcome::kPass);
}

TEST_F(GreylistTest, AutoAllowExemptsANetworkThatPassedEnoughTriplets) {
  cfg_.auto_allow = 2;
  auto g = make();
  auto client = ip("192.0.2.10");
  for (const char* rcpt : {"a@example.com", "b@example.com"}) g->check(client, false, "s@example.org", rcpt);
  now_ += 300;
  for (const char* rcpt : {"a@example.com", "b@example.com"})
    EXPECT_EQ(g->check(client, false, "s@example.org", rcpt).outcome, Outcome::kPass);
  EXPECT_EQ(g->check(ip("192.0.2.99"), false, "new@example.org", "c@example.com").outcome, Outcome::kAutoAllowed);
  EXPECT_EQ(g->check(ip("192.0.3.1"), false, "new@example.org", "c@example.com").outcome, Outcome::kDefer);
  // Once the passes expire, the network is greylisted again.
  now_ += 37 * 86400;
  EXPECT_EQ(g->check(ip("192.0.2.99"), false, "new@example.org", "c@example.com").outcome, Outcome::kDefer);
}

TEST_F(GreylistTest, ZeroDelayPassesTheFirstAttempt) {
  cfg_.delay_ms = 0;
  auto g = make();
  auto d = g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com");
  EXPECT_EQ(d.outcome, Outcome::kPass);
  EXPECT_TRUE(d.first_pass);
}

TEST_F(GreylistTest, TableIsBoundedAndForgetsTheLeastRecentlySeen) {
  cfg_.max_entries = 100;
  auto g = make();
  g->check(ip("203.0.113.5"), false, "old@example.org", "u@example.com");
  now_ += 1;
  g->check(ip("203.0.113.5"), false, "kept@example.org", "u@example.com");
  for (int i = 0; i < 150; ++i) {
    now_ += 1;
    g->check(ip("198.51.100.1"), false, fmt::format("s{}@example.org", i), "u@example.com");
    if (i % 10 == 0) g->check(ip("203.0.113.5"), false, "kept@example.org", "u@example.com");   // refreshed
  }
  EXPECT_LE(g->size(), 100u);
  now_ += 300;
  EXPECT_EQ(g->check(ip("203.0.113.5"), false, "kept@example.org", "u@example.com").outcome, Outcome::kPass);
  EXPECT_EQ(g->check(ip("203.0.113.5"), false, "old@example.org", "u@example.com").outcome, Outcome::kDefer);
}

TEST_F(GreylistTest, StateSurvivesARestart) {
  {
    auto g = make();
    ASSERT_TRUE(g->load());
    g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com");
    g->check(ip("2001:db8::1"), false, "", "\"odd name\"@example.com");
    now_ += 300;
    EXPECT_EQ(g->check(ip("203.0.113.5"), false, "s@example.org", "u@example.com").outcome, Outcome::kPass);
    g->flush();
  }
  auto text = readState();
  EXPECT_NE(text.find("203.0.113.0/24 "), std::string::npos) << text;
  EXPECT_NE(text.find(" <> \"odd%20name\"@example.com\n"), std::string::npos) << text;
  EXPECT_EQ(std::filesystem::status(dir_ + "/greylist").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto g = make();
  ASSERT_TRUE(g->load());
  EXPECT_EQ(g->size(), 2u);
  EXPECT_EQ(g->check(ip("203.0.113.77"), false, "s@example.org", "u@example.com").outcome, Outcome::kPass);
  auto d = g->check(ip("2001:db8::2"), false, "", "\"odd name\"@example.com");
  EXPECT_EQ(d.outcome, Outcome::kPass);
  EXPECT_TRUE(d.first_pass) << "the waiting entry kept its first_seen";
}

TEST_F(GreylistTest, DamagedLinesAreSkippedAndCounted) {
  {
    std::ofstream f(dir_ + "/greylist");
    f << "# comment\n"
      << "203.0.113.0/24 " << now_ - 10 << " " << now_ - 5 << " pass s@example.org u@example.com\n"
      << "garbage\n"
      << "203.0.113.0/24 " << now_ << " " << now_ << " maybe s@example.org v@example.com\n"
      << "\n"
      << "198.51.100.0/24 " << now_ - 10 << " " << now_ - 10 << " wait s@example.org w@example.com\n";
  }
  auto g = make();
  ASSERT_TRUE(g->load());
  EXPECT_EQ(g->size(), 2u);
  EXPECT_EQ(counters_.value("greylist.file_bad_line"), 2u);
  EXPECT_EQ(g->check(ip("203.0.113.1"), false, "s@example.org", "u@example.com").outcome, Outcome::kPass);
}

TEST_F(GreylistTest, ExpiredEntriesAreNotLoaded) {
  {
    std::ofstream f(dir_ + "/greylist");
    f << "203.0.113.0/24 " << now_ - 2 * 86400 << " " << now_ - 2 * 86400 << " wait s@example.org u@example.com\n";
  }
  auto g = make();
  ASSERT_TRUE(g->load());
  EXPECT_EQ(g->size(), 0u);
}

TEST(GreylistFile, LineParserTable) {
  struct Case {
    const char* line;
    bool ok;
  };
  const Case cases[] = {
      {"203.0.113.0/24 10 20 wait s@example.org u@example.com", true},
      {"203.0.113.0/24 10 20 pass <> u@example.com", true},
      {"2001:db8:1:2::/64 10 10 pass a%20b@example.org u@example.com", true},
      {"  203.0.113.5/32\t10 20 wait s@example.org u@example.com  ", true},
      {"203.0.113.0/24 10 20 wait s@example.org", false},                  // a field missing
      {"203.0.113.0/24 10 20 wait s@example.org u@example.com x", false},  // one too many
      {"203.0.113.5/24 10 20 wait s@example.org u@example.com", false},    // host bits set
      {"203.0.113.0 10 20 wait s@example.org u@example.com", false},       // no prefix
      {"nonsense/24 10 20 wait s@example.org u@example.com", false},
      {"203.0.113.0/24 -1 20 wait s@example.org u@example.com", false},
      {"203.0.113.0/24 20 10 wait s@example.org u@example.com", false},    // last before first
      {"203.0.113.0/24 10 99999999999999999999 wait s@example.org u@example.com", false},
      {"203.0.113.0/24 10 20 done s@example.org u@example.com", false},
      {"203.0.113.0/24 10 20 wait s@example.org <>", false},               // no null recipient
      {"203.0.113.0/24 10 20 wait S@example.org u@example.com", false},    // not lowercased
      {"203.0.113.0/24 10 20 wait s%2@example.org u@example.com", false},  // short escape
      {"203.0.113.0/24 10 20 wait s%zz@example.org u@example.com", false},
      {"203.0.113.0/24 10 20 wait s%61@example.org u@example.com", false}, // 'a' needs no escape
      {"203.0.113.0/24 10 20 wait s@example.org u@example.com%", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    auto e = parseGreylistLine(c.line);
    EXPECT_EQ(e.isOk(), c.ok) << (e ? "" : e.status().message());
  }
}

TEST(GreylistFile, FormatParsesBack) {
  GreylistEntry e{"2001:db8::/64", "", "\"x <y>%\"@example.com", 5, 7, true};
  std::string line = formatGreylistLine(e);
  ASSERT_EQ(line.back(), '\n');
  auto back = parseGreylistLine(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->network, e.network);
  EXPECT_EQ(back->sender, e.sender);
  EXPECT_EQ(back->recipient, e.recipient);
  EXPECT_EQ(back->first_seen, 5);
  EXPECT_EQ(back->last_seen, 7);
  EXPECT_TRUE(back->passed);
}

// [protect.greylist] in the configuration: defaults, values, and what is refused.
TEST(GreylistConfig, DefaultsValuesAndErrors) {
  std::string dir = ::testing::TempDir() + "/greylist_config";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/accounts.cf") << "";
  const std::string base = "hostname = \"mail.example.test\"\ndata_dir = \"data\"\n[directory]\naccounts = \"accounts.cf\"\n"
                           "[[listener]]\nservice = \"smtp\"\naddress = \"127.0.0.1:25\"\n";
  auto load = [&](const std::string& extra) { return config::loadFromString(base + extra, dir + "/postern.toml"); };
  auto joined = [](const config::LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics) out += d.toString() + "\n";
    return out;
  };
  {
    auto r = load("");
    ASSERT_TRUE(r.config) << joined(r);
    const auto& g = r.config->protect.greylist;
    EXPECT_FALSE(g.enabled);
    EXPECT_EQ(g.delay_ms, 300'000u);
    EXPECT_EQ(g.retry_window_ms, 24u * 3600'000);
    EXPECT_EQ(g.pass_lifetime_ms, 36ull * 86400'000);
    EXPECT_EQ(g.ipv4_prefix, 24u);
    EXPECT_EQ(g.ipv6_prefix, 64u);
  }
  {
    auto r = load("[protect.greylist]\nenabled = true\ndelay = \"2s\"\nretry_window = \"2d\"\npass_lifetime = \"35d\"\n"
                  "ipv4_prefix = 32\nipv6_prefix = 56\nauto_allow = 0\nmax_entries = 1000\n");
    ASSERT_TRUE(r.config) << joined(r);
    const auto& g = r.config->protect.greylist;
    EXPECT_TRUE(g.enabled);
    EXPECT_EQ(g.delay_ms, 2000u);
    EXPECT_EQ(g.retry_window_ms, 2u * 86400'000);
    EXPECT_EQ(g.pass_lifetime_ms, 35ull * 86400'000);
    EXPECT_EQ(g.ipv4_prefix, 32u);
    EXPECT_EQ(g.ipv6_prefix, 56u);
    EXPECT_EQ(g.auto_allow, 0u);
    EXPECT_EQ(g.max_entries, 1000u);
    EXPECT_NE(config::describe(*r.config).find("protect.greylist.delay: 2s"), std::string::npos);
  }
  const std::pair<const char*, const char*> bad[] = {
      {"dealy = \"1m\"", "unknown setting 'dealy' in [protect.greylist] (did you mean 'delay'?)"},
      {"enabled = \"yes\"", "'enabled' must be true or false"},
      {"ipv4_prefix = 4", "'ipv4_prefix' must be between 8 and 32"},
      {"ipv4_prefix = 33", "ipv4_prefix"},
      {"ipv6_prefix = 16", "'ipv6_prefix' must be between 32 and 128"},
      {"delay = \"1h\"\nretry_window = \"30m\"", "'retry_window' must be longer than 'delay'"},
      {"pass_lifetime = \"1h\"", "'pass_lifetime' must not be shorter than 'retry_window'"},
      {"max_entries = 5", "'max_entries' must be at least 100"},
  };
  for (const auto& [extra, want] : bad) {
    SCOPED_TRACE(extra);
    auto r = load(std::string("[protect.greylist]\n") + extra + "\n");
    EXPECT_FALSE(r.config);
    EXPECT_NE(joined(r).find(want), std::string::npos) << joined(r);
  }
}

}  // namespace
}  // namespace postern::protect
