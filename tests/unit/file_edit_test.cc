// Editing the accounts and aliases files: other lines stay byte for byte, the result
// re-parses, nothing is left behind, concurrent edits do not lose each other's changes.
#include "directory/file_edit.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "directory/accounts.h"
#include "directory/aliases.h"
#include "directory/directory.h"
#include "directory/password.h"

namespace postern::directory {
namespace {

const std::string kBlf = "$2y$05$fcqtImn0bii5YPeMGpstOeXCwVcPH6IdafuGDJ4SX8eUd3yyT7qAq";   // "secret"

class DirectoryFileEdit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "postern_file_edit_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
  }
  void TearDown() override {
    for (const auto& name : listDir()) ::unlink((dir_ + "/" + name).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void write(const std::string& p, const std::string& content) { std::ofstream(p, std::ios::binary) << content; }
  std::string read(const std::string& p) const {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::vector<std::string> listDir() const {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir_.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
    }
    return names;
  }
  // Nothing but the data file and its lock file.
  void expectNoTempFiles() {
    for (const auto& n : listDir()) EXPECT_EQ(n.find(".tmp."), std::string::npos) << n;
  }

  std::string dir_;
};

TEST_F(DirectoryFileEdit, WriteFileAtomicReplacesAndKeepsMode) {
  std::string p = path("f.cf");
  write(p, "old\n");
  ASSERT_EQ(::chmod(p.c_str(), 0604), 0);
  ASSERT_TRUE(writeFileAtomic(p, "new content\n").isOk());
  EXPECT_EQ(read(p), "new content\n");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, WriteFileAtomicNewFileGetsDefaultMode) {
  std::string p = path("new.cf");
  ASSERT_TRUE(writeFileAtomic(p, "x").isOk());
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, kNewFileMode);
  EXPECT_EQ(read(p), "x");
}

TEST_F(DirectoryFileEdit, WriteFileAtomicRemovesStaleTempFile) {
  std::string p = path("f.cf");
  write(p + ".tmp." + std::to_string(::getpid()), "stale");
  ASSERT_TRUE(writeFileAtomic(p, "fresh").isOk());
  EXPECT_EQ(read(p), "fresh");
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, WriteFileAtomicFailsCleanlyInMissingFolder) {
  Status st = writeFileAtomic(path("missing/f.cf"), "x");
  EXPECT_FALSE(st.isOk());
  EXPECT_EQ(st.code(), Status::Code::kIo);
}

TEST_F(DirectoryFileEdit, WriteFileAtomicCleansUpWhenRenameFails) {
  std::string p = path("busy.cf");
  ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);   // renaming a file over a folder fails
  Status st = writeFileAtomic(p, "x");
  EXPECT_EQ(st.code(), Status::Code::kIo);
  expectNoTempFiles();
  ::rmdir(p.c_str());
}

TEST_F(DirectoryFileEdit, ReadTextFile) {
  EXPECT_EQ(readTextFile(path("none")).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(readTextFile(dir_).status().code(), Status::Code::kIo);   // a folder
  write(path("a"), std::string("a\0b", 3));
  EXPECT_EQ(*readTextFile(path("a")), std::string("a\0b", 3));
}

TEST_F(DirectoryFileEdit, AddAccountCreatesFileAndPreservesOtherLines) {
  std::string p = path("accounts.cf");
  ASSERT_TRUE(addAccount(p, "First@Example.com", "pw one").isOk());
  Result<AccountsFile> f = parseAccounts(read(p), p);
  ASSERT_TRUE(f.isOk()) << f.status().message();
  ASSERT_EQ(f->accounts.size(), 1u);
  EXPECT_EQ(f->accounts[0].address, "first@example.com");
  EXPECT_EQ(f->accounts[0].scheme, Scheme::kSha512Crypt);
  EXPECT_TRUE(verifyPassword(f->accounts[0].scheme, f->accounts[0].hash, "pw one"));

  // Comments, extra fields and a missing final newline are kept as they are.
  std::string before = "# managed by hand\nold@example.com|{BLF-CRYPT}" + kBlf + "|extra|fields\n\n# end";
  write(p, before);
  ASSERT_TRUE(addAccount(p, "new@example.com", "pw two").isOk());
  std::string after = read(p);
  ASSERT_EQ(after.substr(0, before.size() + 1), before + "\n");
  f = parseAccounts(after, p);
  ASSERT_TRUE(f.isOk()) << f.status().message();
  ASSERT_EQ(f->accounts.size(), 2u);
  EXPECT_EQ(f->accounts[1].address, "new@example.com");
  EXPECT_EQ(f->accounts[1].line, 5u);
  EXPECT_EQ(after.back(), '\n');
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, AddAccountKeepsWindowsLineEndings) {
  std::string p = path("accounts.cf");
  std::string before = "old@example.com|{BLF-CRYPT}" + kBlf + "\r\n";
  write(p, before);
  ASSERT_TRUE(addAccount(p, "new@example.com", "pw").isOk());
  std::string after = read(p);
  EXPECT_EQ(after.substr(0, before.size()), before);
  EXPECT_EQ(after.substr(after.size() - 2), "\r\n");
}

TEST_F(DirectoryFileEdit, AddAccountErrors) {
  std::string p = path("accounts.cf");
  write(p, "old@example.com|{BLF-CRYPT}" + kBlf + "\n");
  EXPECT_EQ(addAccount(p, "OLD@example.com", "pw").code(), Status::Code::kExists);
  for (const char* bad : {"no-at", "a b@example.com", "a|b@example.com", "a@exa mple.com", "a\n@example.com",
                          "#a@example.com", "@example.com", ""}) {
    EXPECT_EQ(addAccount(p, bad, "pw").code(), Status::Code::kInvalid) << bad;
  }
  EXPECT_EQ(addAccount(p, "new@example.com", "").code(), Status::Code::kInvalid);
  EXPECT_EQ(read(p), "old@example.com|{BLF-CRYPT}" + kBlf + "\n");

  // A file that does not parse is not edited; its error is reported.
  write(p, "broken line\n");
  Status st = addAccount(p, "new@example.com", "pw");
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_EQ(st.message(), p + ":1: error: expected ADDRESS|{SCHEME}HASH, found no '|'");
  EXPECT_EQ(read(p), "broken line\n");
}

// An account is the folder <root>/<domain>/<local part>: addresses that cannot be one are
// refused with the reason, and the file is not touched. Deleting one (added by hand) works.
TEST_F(DirectoryFileEdit, AccountsThatCannotBeAMailboxFolder) {
  std::string p = path("accounts.cf");
  std::string hand = "a/b@example.com|{BLF-CRYPT}" + kBlf + "\n";
  write(p, hand);
  struct Case {
    const char* address;
    const char* reason;
  };
  const Case cases[] = {
      {"a/b@example.com", "the local part 'a/b' contains '/'"},
      {"..@example.com", "the local part '..' is '..' (the parent folder)"},
      {".@example.com", "the local part '.' is '.' (the folder itself)"},
      {"../../x@example.com", "the local part '../../x' contains '/'"},
      {".hidden@example.com", "the local part '.hidden' starts with '.'"},
  };
  for (const Case& c : cases) {
    Status st = addAccount(p, c.address, "pw");
    EXPECT_EQ(st.code(), Status::Code::kInvalid) << c.address;
    EXPECT_EQ(st.message(), std::string("invalid address '") + c.address + "': " + c.reason +
                                ", so it cannot name a mailbox folder (<mailbox root>/<domain>/<local part>)");
  }
  Status st = setPassword(p, "A/B@example.com", "pw");
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_EQ(st.message(), "account 'A/B@example.com' cannot have a mailbox: the local part 'A/B' contains '/'; mail to "
                          "it is refused. Delete it with 'postern account del' and add a valid address");
  EXPECT_EQ(read(p), hand);
  ASSERT_TRUE(deleteAccount(p, "a/b@example.com").isOk());
  EXPECT_EQ(read(p), "");
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, DeleteAccount) {
  std::string p = path("accounts.cf");
  std::string a = "a@example.com|{BLF-CRYPT}" + kBlf + "\n";
  std::string b = "B@Example.com|{BLF-CRYPT}" + kBlf + "|extra\n";
  std::string c = "c@example.com|{BLF-CRYPT}" + kBlf;
  write(p, "# top\n" + a + b + "# mid\n" + c);
  ASSERT_TRUE(deleteAccount(p, "b@EXAMPLE.com").isOk());
  EXPECT_EQ(read(p), "# top\n" + a + "# mid\n" + c);
  ASSERT_TRUE(deleteAccount(p, "c@example.com").isOk());
  EXPECT_EQ(read(p), "# top\n" + a + "# mid\n");
  EXPECT_EQ(deleteAccount(p, "c@example.com").code(), Status::Code::kNotFound);
  EXPECT_EQ(deleteAccount(path("missing.cf"), "a@example.com").code(), Status::Code::kNotFound);
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, SetPasswordReplacesOnlyTheHash) {
  std::string p = path("accounts.cf");
  std::string a = "a@example.com|{BLF-CRYPT}" + kBlf + "\r\n";
  std::string c = "c@example.com|{BLF-CRYPT}" + kBlf + "\r\n";
  write(p, a + "  Mixed@Example.com |{BLF-CRYPT}" + kBlf + "|keep=this\r\n" + c);
  ASSERT_TRUE(setPassword(p, "mixed@example.com", "new pass").isOk());
  std::string after = read(p);
  EXPECT_EQ(after.substr(0, a.size()), a);
  EXPECT_EQ(after.substr(after.size() - c.size()), c);
  std::string middle = after.substr(a.size(), after.size() - a.size() - c.size());
  const std::string kept_prefix = "  Mixed@Example.com |{SHA512-CRYPT}$6$";
  EXPECT_EQ(middle.substr(0, kept_prefix.size()), kept_prefix);
  EXPECT_EQ(middle.substr(middle.size() - 12), "|keep=this\r\n");
  Result<AccountsFile> f = parseAccounts(after, p);
  ASSERT_TRUE(f.isOk()) << f.status().message();
  EXPECT_TRUE(verifyPassword(f->accounts[1].scheme, f->accounts[1].hash, "new pass"));
  EXPECT_FALSE(verifyPassword(f->accounts[1].scheme, f->accounts[1].hash, "secret"));
  EXPECT_TRUE(verifyPassword(f->accounts[0].scheme, f->accounts[0].hash, "secret"));
  EXPECT_EQ(setPassword(p, "nobody@example.com", "x").code(), Status::Code::kNotFound);
  EXPECT_EQ(setPassword(p, "a@example.com", "").code(), Status::Code::kInvalid);
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, AddAndDeleteAlias) {
  std::string p = path("virtual.cf");
  std::string before = "# aliases\ninfo@example.com a@example.com\nlist@example.com a@example.com,\n  b@example.com\n"
                       "# after\n@example.org c@example.org\n";
  write(p, before);
  ASSERT_TRUE(addAlias(p, "Team@Example.com", "a@example.com, b@example.com c@remote.example").isOk());
  std::string after = read(p);
  EXPECT_EQ(after, before + "team@example.com a@example.com,b@example.com,c@remote.example\n");
  Result<AliasesFile> f = parseAliases(after, p);
  ASSERT_TRUE(f.isOk()) << f.status().message();
  EXPECT_EQ(f->aliases.back().targets.size(), 3u);

  EXPECT_EQ(addAlias(p, "team@example.com", "x@example.com").code(), Status::Code::kExists);
  EXPECT_EQ(addAlias(p, "@EXAMPLE.org", "x@example.com").code(), Status::Code::kExists);
  EXPECT_EQ(addAlias(p, "new@example.com", " , ").code(), Status::Code::kInvalid);
  EXPECT_EQ(addAlias(p, "new@example.com", "root").code(), Status::Code::kInvalid);
  EXPECT_EQ(addAlias(p, "new@example.com", "#x@example.com").code(), Status::Code::kInvalid);
  EXPECT_EQ(addAlias(p, "new example.com", "x@example.com").code(), Status::Code::kInvalid);
  EXPECT_EQ(read(p), after);

  ASSERT_TRUE(addAlias(p, "@example.net", "a@example.com").isOk());
  ASSERT_TRUE(deleteAlias(p, "@example.net").isOk());
  EXPECT_EQ(read(p), after);

  // A continued alias goes with its continuation lines; the rest stays.
  ASSERT_TRUE(deleteAlias(p, "LIST@example.com").isOk());
  EXPECT_EQ(read(p), "# aliases\ninfo@example.com a@example.com\n# after\n@example.org c@example.org\n"
                     "team@example.com a@example.com,b@example.com,c@remote.example\n");
  EXPECT_EQ(deleteAlias(p, "list@example.com").code(), Status::Code::kNotFound);
  expectNoTempFiles();
}

// A target in a local domain would be a mailbox folder; a remote one never is. Local means
// the alias's own domain, or a domain of the directory given; an alias target is no folder.
TEST_F(DirectoryFileEdit, AliasTargetsThatCannotBeAMailboxFolder) {
  std::string p = path("virtual.cf");
  write(p, "");
  Status st = addAlias(p, "x@example.com", "ok@example.com,a/b@example.com");
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_EQ(st.message(), "invalid address 'a/b@example.com': the local part 'a/b' contains '/', so it cannot name a "
                          "mailbox folder (<mailbox root>/<domain>/<local part>)");
  EXPECT_EQ(addAlias(p, "@example.com", "..@example.com").code(), Status::Code::kInvalid);
  EXPECT_EQ(read(p), "");
  // Without a directory, another domain is not known to be local.
  EXPECT_TRUE(addAlias(p, "x@example.com", "a/b@remote.example").isOk());

  Result<AccountsFile> accounts = parseAccounts("u@local.example|{BLF-CRYPT}" + kBlf + "\n", "accounts.cf");
  Result<AliasesFile> aliases = parseAliases("a/b@local.example u@local.example\n", "virtual.cf");
  ASSERT_TRUE(accounts.isOk() && aliases.isOk());
  auto dir = Directory::build(std::move(accounts).value(), std::move(aliases).value());
  EXPECT_EQ(addAlias(p, "y@example.com", "../x@local.example", dir.get()).code(), Status::Code::kInvalid);
  EXPECT_TRUE(addAlias(p, "y@example.com", "a/b@remote.example", dir.get()).isOk());
  EXPECT_TRUE(addAlias(p, "z@example.com", "a/b@local.example", dir.get()).isOk());   // an alias, no folder
  EXPECT_EQ(read(p), "x@example.com a/b@remote.example\ny@example.com a/b@remote.example\n"
                     "z@example.com a/b@local.example\n");
  expectNoTempFiles();
}

TEST_F(DirectoryFileEdit, AddAliasCreatesFile) {
  std::string p = path("virtual.cf");
  ASSERT_TRUE(addAlias(p, "@example.com", "catch@example.com").isOk());
  EXPECT_EQ(read(p), "@example.com catch@example.com\n");
}

TEST_F(DirectoryFileEdit, EditsFollowSymbolicLinks) {
  std::string real = path("real.cf");
  std::string link = path("link.cf");
  write(real, "");
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  ASSERT_TRUE(addAlias(link, "a@example.com", "b@example.com").isOk());
  struct stat st {};
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(read(real), "a@example.com b@example.com\n");
}

TEST_F(DirectoryFileEdit, ConcurrentEditsDoNotLoseChanges) {
  std::string p = path("accounts.cf");
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = addAccount(p, "u" + std::to_string(i) + "@example.com", "pw"); });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.isOk()) << st.message();
  Result<AccountsFile> f = parseAccounts(read(p), p);
  ASSERT_TRUE(f.isOk()) << f.status().message();
  EXPECT_EQ(f->accounts.size(), static_cast<size_t>(kThreads));
  expectNoTempFiles();
}

}  // namespace
}  // namespace postern::directory
