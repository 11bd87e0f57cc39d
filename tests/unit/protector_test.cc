// Auto-ban bookkeeping without a server: thresholds, exemptions, keys, escalation, persistence.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "protect/bans_file.h"

#include "protect/protector.h"

namespace postern::protect {
namespace {

class ProtectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/protector_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg_.auth_failures.threshold = 3;
    cfg_.allow_networks = {*Cidr::parse("192.0.2.0/24")};
  }
  Protector make() { return Protector(cfg_, {*Cidr::parse("10.0.0.1/32")}, dir_ + "/bans", counters_); }
  config::Protect cfg_;
  Counters counters_;
  std::string dir_;
};

TEST_F(ProtectorTest, DamagedBansFileLineIsSkippedAndTheRestLoaded) {
  int64_t later = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count() + 3600;
  {
    std::ofstream f(dir_ + "/bans");
    f << "203.0.113.5 " << later << " 0 first\n"
      << "garbage-line-without-fields\n"
      << "203.0.113.6 " << later << " 1 second\n";
  }
  Protector p = make();
  ASSERT_TRUE(p.load());
  EXPECT_TRUE(p.banned(*IpAddress::parse("203.0.113.5")));
  EXPECT_TRUE(p.banned(*IpAddress::parse("203.0.113.6")));
  EXPECT_EQ(p.list().size(), 2u);
  EXPECT_EQ(counters_.value("protect.bans_file_bad_line"), 1u);
}

// Saves run on pool threads; concurrent ones must neither collide on the temporary file
// nor let an older snapshot overwrite a newer one.
TEST_F(ProtectorTest, ConcurrentSavesLeaveTheNewestCompleteFile) {
  Protector p = make();
  std::vector<std::thread> pool;
  std::mutex pool_mu;
  p.setOffloader([&](std::function<void()> f) {
    std::lock_guard lock(pool_mu);
    pool.emplace_back(std::move(f));
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) p.ban("198.51.100." + std::to_string(t * 50 + i), 3600, "load");
    });
  for (auto& c : callers) c.join();
  {
    std::lock_guard lock(pool_mu);
    for (auto& w : pool) w.join();
  }
  std::ifstream f(dir_ + "/bans");
  std::stringstream text;
  text << f.rdbuf();
  auto bans = parseBans(text.str());
  ASSERT_TRUE(bans) << bans.status().message();
  EXPECT_EQ(bans->size(), 200u) << "the last save holds every ban";
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
}

TEST_F(ProtectorTest, ThresholdBansAndExemptionsNeverBan) {
  Protector p = make();
  auto bad = *IpAddress::parse("203.0.113.5");
  EXPECT_FALSE(p.record(bad, Offense::kAuthFailure, "x"));
  EXPECT_FALSE(p.record(bad, Offense::kAuthFailure, "x"));
  EXPECT_TRUE(p.record(bad, Offense::kAuthFailure, "x"));
  ASSERT_TRUE(p.banned(bad));
  EXPECT_EQ(p.admitConnection(bad), Protector::Admit::kBanned);
  for (const char* ex : {"192.0.2.9", "10.0.0.1"}) {
    auto a = *IpAddress::parse(ex);
    for (int i = 0; i < 10; ++i) EXPECT_FALSE(p.record(a, Offense::kAuthFailure, "x"));
    EXPECT_FALSE(p.banned(a));
  }
}

TEST_F(ProtectorTest, Ipv6CountedPerPrefix) {
  Protector p = make();
  EXPECT_EQ(p.keyOf(*IpAddress::parse("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
  for (const char* a : {"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"})
    p.record(*IpAddress::parse(a), Offense::kAuthFailure, "x");
  EXPECT_TRUE(p.banned(*IpAddress::parse("2001:db8:1:2:ffff::9")));
  EXPECT_FALSE(p.banned(*IpAddress::parse("2001:db8:1:3::1")));
}

TEST_F(ProtectorTest, RepeatOffendersEscalateAndBansPersist) {
  {
    Protector p = make();
    Ban first = p.ban("203.0.113.7", 0, "test");
    EXPECT_EQ(first.level, 0u);
    Ban second = p.ban("203.0.113.7", 0, "again");
    EXPECT_EQ(second.level, 1u);
    EXPECT_NEAR(second.until - first.until, cfg_.ban_time_ms / 1000, 2);   // doubled
  }
  Protector reloaded = make();
  ASSERT_TRUE(reloaded.load());
  auto bans = reloaded.list();
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].key, "203.0.113.7");
  EXPECT_EQ(bans[0].reason, "again");
  EXPECT_TRUE(reloaded.unban("203.0.113.7", "test"));
  EXPECT_TRUE(reloaded.list().empty());
}


TEST_F(ProtectorTest, ConnectionLimitsCountOpenConnections) {
  cfg_.max_connections_per_client = 2;
  Protector p = make();
  auto a = *IpAddress::parse("198.51.100.20");
  EXPECT_EQ(p.admitConnection(a), Protector::Admit::kOk);
  EXPECT_EQ(p.admitConnection(a), Protector::Admit::kOk);
  EXPECT_EQ(p.admitConnection(a), Protector::Admit::kTooManyConnections);
  p.releaseConnection(a);
  EXPECT_EQ(p.admitConnection(a), Protector::Admit::kOk);
}

}  // namespace
}  // namespace postern::protect
