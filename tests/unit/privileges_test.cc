// The pieces of the privilege drop that can run inside a test process: the ownership walk
// and the privileged reader (the drop itself is irreversible; tests/e2e/test_privileges.py
// checks it on the real daemon through /proc).
#include "app/privileges.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace postern::app {
namespace {

namespace fs = std::filesystem;

class PrivilegesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/privileges_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& path, const std::string& text, mode_t mode = 0600) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
  }
  std::string dir_;
};

uid_t ownerOf(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_uid;
}

TEST_F(PrivilegesTest, LookupNamesAMissingUserAndHowToCreateIt) {
  config::Server s;
  s.user = "no-such-user-for-postern-tests";
  auto id = lookupIdentity(s);
  ASSERT_FALSE(id);
  EXPECT_NE(id.status().message().find("'no-such-user-for-postern-tests' does not exist"), std::string::npos);
  EXPECT_NE(id.status().message().find("useradd --system"), std::string::npos);
  s.user = "root";
  s.group = "no-such-group-for-postern-tests";
  id = lookupIdentity(s);
  ASSERT_FALSE(id);
  EXPECT_NE(id.status().message().find("group 'no-such-group-for-postern-tests' does not exist"), std::string::npos);
  s.group = "";
  id = lookupIdentity(s);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->uid, 0u);
  EXPECT_EQ(id->group, "root");
}

TEST_F(PrivilegesTest, OwnershipWalkSkipsLinksAndRespectsDepthAndExclusions) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing owners needs root";
  Identity id{"nobody", "nogroup", 65534, 65534};
  fs::create_directories(dir_ + "/data/spool");
  fs::create_directories(dir_ + "/data/mail/example.test/alice/new");
  fs::create_directories(dir_ + "/outside");
  write(dir_ + "/data/spool/segment", "x");
  write(dir_ + "/data/mail/example.test/alice/new/msg", "x");
  write(dir_ + "/outside/secret", "x");
  fs::create_symlink(dir_ + "/outside", dir_ + "/data/link-to-outside");
  fs::create_hard_link(dir_ + "/outside/secret", dir_ + "/data/hardlink");

  auto r = takeOwnership(dir_ + "/data", id, 64, false, dir_ + "/data/mail");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(ownerOf(dir_ + "/data"), id.uid);
  EXPECT_EQ(ownerOf(dir_ + "/data/spool"), id.uid);
  EXPECT_EQ(ownerOf(dir_ + "/data/spool/segment"), id.uid);
  EXPECT_EQ(ownerOf(dir_ + "/data/link-to-outside"), 0u);      // the link itself is left alone
  EXPECT_EQ(ownerOf(dir_ + "/outside"), 0u);                    // and never followed
  EXPECT_EQ(ownerOf(dir_ + "/outside/secret"), 0u);             // a hard link is skipped
  EXPECT_EQ(r->skipped, 1u);
  EXPECT_EQ(ownerOf(dir_ + "/data/mail"), 0u);                  // excluded
  EXPECT_EQ(r->changed, 3u);

  // The mail store: folders only, down to tmp/new/cur.
  r = takeOwnership(dir_ + "/data/mail", id, 3, true);
  ASSERT_TRUE(r);
  EXPECT_EQ(ownerOf(dir_ + "/data/mail/example.test/alice/new"), id.uid);
  EXPECT_EQ(ownerOf(dir_ + "/data/mail/example.test/alice/new/msg"), 0u);
  EXPECT_EQ(r->changed, 4u);
  // A second walk has nothing left to do.
  r = takeOwnership(dir_ + "/data/mail", id, 3, true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->changed, 0u);
}

TEST_F(PrivilegesTest, ReaderAnswersOnlyForConfiguredFiles) {
  const std::string key = dir_ + "/privkey.pem", other = dir_ + "/other", missing = dir_ + "/missing";
  write(key, "KEY-1");
  write(other, "not for you");
  auto reader = PrivilegedReader::start({key, missing, dir_});
  ASSERT_TRUE(reader) << reader.status().message();
  auto& r = **reader;

  auto got = r.read(key);
  ASSERT_TRUE(got) << got.status().message();
  EXPECT_EQ(*got, "KEY-1");
  FileStamp before = r.stamp(key);
  EXPECT_TRUE(before.exists);
  EXPECT_EQ(before.size, 5);

  auto gone = r.read(missing);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(r.stamp(missing).exists);
  auto folder = r.read(dir_);   // allowed, but not a regular file
  ASSERT_FALSE(folder);
  EXPECT_NE(folder.status().message().find("not a regular file"), std::string::npos);

  // Rename-into-place is seen by the stamp and the new bytes are read.
  write(dir_ + "/new", "KEY-2, longer");
  ::rename((dir_ + "/new").c_str(), key.c_str());
  EXPECT_FALSE(r.stamp(key) == before);
  EXPECT_EQ(*r.read(key), "KEY-2, longer");

  // A path that is not configured is read with the caller's own rights, not the reader's.
  EXPECT_EQ(*r.read(other), "not for you");
}

TEST_F(PrivilegesTest, ReadsFallBackWhenTheReaderIsGone) {
  const std::string key = dir_ + "/k";
  write(key, "K");
  auto reader = PrivilegedReader::start({key});
  ASSERT_TRUE(reader);
  ::kill((*reader)->pid(), SIGKILL);
  auto got = (*reader)->read(key);   // logged once, then the process's own rights
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "K");
}

}  // namespace
}  // namespace postern::app
