// Mailbox usage for quotas: ",S=" in names, the Maildir walk (folders, names without S=,
// links), the cache with reservations, and the 5.2.2 status of a mailbox-full bounce.
#include "delivery/quota_usage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "queue/dsn.h"

namespace postern::delivery {
namespace {

TEST(QuotaUsage, SizeFromName) {
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host,S=1234"), 1234u);
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host,S=1234,W=1260:2,S"), 1234u);
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host,W=1260,S=99:2,"), 99u);
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host:2,S"), std::nullopt);
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host,S=:2,"), std::nullopt);
  EXPECT_EQ(maildirSizeFromName("1700000000.M1P2Q3.host,S=12x"), std::nullopt);
}

class TempMaildir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/postern-quota-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)std::system(("rm -rf '" + root_ + "'").c_str()); }
  void mkdirs(const std::string& rel) { (void)std::system(("mkdir -p '" + root_ + "/" + rel + "'").c_str()); }
  void write(const std::string& rel, size_t bytes) {
    std::ofstream(root_ + "/" + rel) << std::string(bytes, 'x');
  }
  std::string root_;
};

TEST_F(TempMaildir, ScanCountsEveryFolderAndNamesWithoutSize) {
  std::string box = "example.com/alice";
  for (const char* d : {"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Trash/cur", "notafolder/cur"})
    mkdirs(box + "/" + d);
  write(box + "/new/1.M1P1Q1.h,S=100", 7);          // the name wins: 100
  write(box + "/cur/2.M1P1Q2.h,S=200:2,S", 3);      // 200
  write(box + "/cur/3.M1P1Q3.h:2,", 50);            // no S=: stat size 50
  write(box + "/tmp/4.M1P1Q4.h,S=1000", 1000);      // tmp/ is not counted
  write(box + "/.Sent/cur/5.M1P1Q5.h,S=300:2,S", 1);
  write(box + "/.Sent/new/6.M1P1Q6.h", 25);
  write(box + "/.Trash/cur/7.M1P1Q7.h,S=5:2,ST", 5);
  write(box + "/notafolder/cur/8,S=9999", 1);       // not a Maildir++ folder name
  write(box + "/dovecot-uidlist", 500);             // not a message
  EXPECT_EQ(scanMaildirUsage(root_ + "/" + box), 100u + 200 + 50 + 300 + 25 + 5);
  EXPECT_EQ(scanMaildirUsage(root_ + "/example.com/nobody"), 0u);
  ASSERT_EQ(::symlink((root_ + "/" + box + "/cur").c_str(), (root_ + "/" + box + "/.Link").c_str()), 0);
  EXPECT_EQ(scanMaildirUsage(root_ + "/" + box), 100u + 200 + 50 + 300 + 25 + 5);   // links not followed
}

TEST_F(TempMaildir, CacheAddsReservationsAndRescansWhenStale) {
  mkdirs("example.com/alice/new");
  write("example.com/alice/new/1.M1P1Q1.h,S=100", 100);
  QuotaUsage cached(root_, std::chrono::hours(1));
  EXPECT_EQ(cached.usage("alice@example.com"), 100u);
  uint64_t used = 0;
  EXPECT_TRUE(cached.reserve("alice@example.com", 50, 150, &used));
  EXPECT_EQ(used, 100u);
  EXPECT_FALSE(cached.reserve("alice@example.com", 1, 150, &used));   // 151 > 150
  EXPECT_EQ(used, 150u);
  cached.release("alice@example.com", 50);                            // not delivered after all
  EXPECT_TRUE(cached.reserve("alice@example.com", 50, 150));
  EXPECT_TRUE(cached.reserve("alice@example.com", 1000, 0));          // 0: no limit
  write("example.com/alice/new/2.M1P1Q2.h,S=7", 7);
  EXPECT_EQ(cached.usage("alice@example.com"), 1150u);                // not rescanned yet

  QuotaUsage stale(root_, std::chrono::seconds(0));
  EXPECT_TRUE(stale.reserve("alice@example.com", 10, 0));
  EXPECT_EQ(stale.usage("alice@example.com"), 107u);                  // rescanned every time
}

TEST(QuotaDsn, MailboxFullIs522) {
  EXPECT_EQ(queue::statusForLocalFailure(true, "mailbox full: a@example.com is over its quota", false), "5.2.2");
  EXPECT_EQ(queue::statusForLocalFailure(false, "mailbox full: a@example.com is over its quota", true), "4.4.7");
}

}  // namespace
}  // namespace postern::delivery
