// Directory: RCPT resolution (aliases, accounts, catch-all, loops), sender checks, and
// loading the docker-mailserver example folder tests/data/dms.
#include "directory/directory.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace postern::directory {
namespace {

using Outcome = Directory::Outcome;

const std::string kHash =
    "$6$4stBSjDznfa8DUMa$slmAiZ6XXm1eZT03mgX61spMnS5f.iIYtytFdEkytRrEN3iuKh7jCCknKBoq28Yb.99fg3yRw.mozye2xO7551";

// Builds a Directory from file texts (accounts as bare addresses, one per line).
std::shared_ptr<const Directory> makeDirectory(const std::vector<std::string>& accounts, const std::string& aliases) {
  std::string text;
  for (const auto& a : accounts) text += a + "|{SHA512-CRYPT}" + kHash + "\n";
  Result<AccountsFile> acc = parseAccounts(text, "accounts.cf");
  EXPECT_TRUE(acc.isOk()) << acc.status().message();
  Result<AliasesFile> ali = parseAliases(aliases, "virtual.cf");
  EXPECT_TRUE(ali.isOk()) << ali.status().message();
  if (!acc.isOk() || !ali.isOk()) return nullptr;
  return Directory::build(std::move(acc).value(), std::move(ali).value());
}

// "addr" for a local mailbox, "addr (remote)" otherwise, in resolution order.
std::vector<std::string> describe(const Directory::Resolution& r) {
  std::vector<std::string> out;
  for (const auto& t : r.targets) out.push_back(t.local_mailbox ? t.address : t.address + " (remote)");
  return out;
}

using Names = std::vector<std::string>;

TEST(DirectoryResolve, AccountIsDeliveredToItsMailbox) {
  auto d = makeDirectory({"user@example.com"}, "");
  auto r = d->resolve("User@EXAMPLE.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), Names{"user@example.com"});
  ASSERT_NE(d->findAccount("USER@example.com"), nullptr);
  EXPECT_EQ(d->findAccount("user@example.com")->hash, kHash);
  EXPECT_EQ(d->findAccount("nobody@example.com"), nullptr);
}

TEST(DirectoryResolve, AliasToAccount) {
  auto d = makeDirectory({"user@example.com"}, "info@example.com user@example.com\n");
  auto r = d->resolve("info@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), Names{"user@example.com"});
}

TEST(DirectoryResolve, AliasChainIsFollowed) {
  auto d = makeDirectory({"user@example.com"},
                         "a@example.com b@example.com\nb@example.com c@example.com\nc@example.com user@example.com\n");
  auto r = d->resolve("a@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), Names{"user@example.com"});
}

TEST(DirectoryResolve, MultipleTargetsDeduplicatedInOrder) {
  auto d = makeDirectory({"u1@example.com", "u2@example.com"},
                         "team@example.com u2@example.com, devs@example.com, friend@remote.example\n"
                         "devs@example.com u1@example.com,u2@example.com,Friend@remote.example\n");
  auto r = d->resolve("team@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), (Names{"u2@example.com", "u1@example.com", "friend@remote.example (remote)"}));
}

TEST(DirectoryResolve, DiamondIsNotALoop) {
  auto d = makeDirectory({"u@example.com"},
                         "a@example.com b@example.com,c@example.com\nb@example.com d@example.com\n"
                         "c@example.com d@example.com\nd@example.com u@example.com\n");
  auto r = d->resolve("a@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), Names{"u@example.com"});
}

TEST(DirectoryResolve, LoopIsReported) {
  auto d = makeDirectory({"u@example.com"}, "a@example.com b@example.com\nb@example.com a@example.com, u@example.com\n");
  auto r = d->resolve("a@example.com");
  EXPECT_EQ(r.outcome, Outcome::kLoop);
  EXPECT_TRUE(r.targets.empty());
  EXPECT_EQ(d->resolve("b@example.com").outcome, Outcome::kLoop);
  EXPECT_EQ(d->resolve("u@example.com").outcome, Outcome::kDeliver);
}

TEST(DirectoryResolve, AliasListingItselfKeepsACopyInItsMailbox) {
  auto d = makeDirectory({"me@example.com"},
                         "me@example.com me@example.com, me@gmail.example\n"
                         "noacct@example.com noacct@example.com, other@remote.example\n");
  auto r = d->resolve("me@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), (Names{"me@example.com", "me@gmail.example (remote)"}));
  // Without an account the self entry is dropped; the rest is delivered.
  auto n = d->resolve("noacct@example.com");
  EXPECT_EQ(n.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(n), Names{"other@remote.example (remote)"});
}

TEST(DirectoryResolve, AliasShadowsAccountOfTheSameAddress) {
  // Postfix order: virtual_alias_maps before virtual_mailbox_maps.
  auto d = makeDirectory({"a@example.com", "b@example.com"}, "a@example.com b@example.com\n");
  EXPECT_EQ(describe(d->resolve("a@example.com")), Names{"b@example.com"});
}

TEST(DirectoryResolve, CatchAll) {
  auto d = makeDirectory({"admin@example.com", "user@example.com"}, "@example.com admin@example.com\n");
  auto r = d->resolve("anything@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  EXPECT_EQ(describe(r), Names{"admin@example.com"});
  // An existing account wins over the catch-all.
  EXPECT_EQ(describe(d->resolve("user@example.com")), Names{"user@example.com"});
}

TEST(DirectoryResolve, CatchAllAppliesToAliasTargetsToo) {
  auto d = makeDirectory({"admin@example.com"},
                         "@example.com admin@example.com\nold@example.org gone@example.com\n");
  EXPECT_EQ(describe(d->resolve("old@example.org")), Names{"admin@example.com"});
}

TEST(DirectoryResolve, CatchAllToNowhereIsALoop) {
  auto d = makeDirectory({}, "@example.com postmaster@example.com\n");
  EXPECT_EQ(d->resolve("x@example.com").outcome, Outcome::kLoop);
}

TEST(DirectoryResolve, UnknownLocalUser) {
  auto d = makeDirectory({"user@example.com"}, "info@example.org user@example.com\n");
  auto r = d->resolve("nobody@example.com");
  EXPECT_EQ(r.outcome, Outcome::kUnknownUser);
  EXPECT_TRUE(r.targets.empty());
  EXPECT_EQ(d->resolve("nobody@example.org").outcome, Outcome::kUnknownUser);   // alias-only domain
  EXPECT_EQ(d->resolve("@example.com").outcome, Outcome::kUnknownUser);
}

TEST(DirectoryResolve, LocalTargetThatIsNothingIsDropped) {
  auto d = makeDirectory({"u@example.com"},
                         "list@example.com u@example.com, left@example.com\nghost@example.com left@example.com\n");
  EXPECT_EQ(describe(d->resolve("list@example.com")), Names{"u@example.com"});
  EXPECT_EQ(d->resolve("ghost@example.com").outcome, Outcome::kUnknownUser);
}

TEST(DirectoryResolve, NonLocalDomain) {
  auto d = makeDirectory({"user@example.com"}, "a@example.com friend@remote.example\n");
  EXPECT_EQ(d->resolve("someone@remote.example").outcome, Outcome::kNotLocal);
  EXPECT_EQ(d->resolve("someone@sub.example.com").outcome, Outcome::kNotLocal);
  EXPECT_EQ(d->resolve("no-at-sign").outcome, Outcome::kNotLocal);
  EXPECT_EQ(d->resolve("").outcome, Outcome::kNotLocal);
  EXPECT_FALSE(d->isLocalDomain("remote.example"));   // alias targets do not make a domain local
}

TEST(DirectoryResolve, RemoteAliasTarget) {
  auto d = makeDirectory({}, "fwd@example.com Someone@Remote.Example\n");
  auto r = d->resolve("fwd@example.com");
  EXPECT_EQ(r.outcome, Outcome::kDeliver);
  ASSERT_EQ(r.targets.size(), 1u);
  EXPECT_EQ(r.targets[0].address, "someone@remote.example");
  EXPECT_FALSE(r.targets[0].local_mailbox);
}

TEST(DirectoryResolve, DepthLimit) {
  // a0 -> a1 -> ... -> aN -> u: kMaxAliasDepth alias levels work, one more is a loop.
  auto chain = [](size_t levels) {
    std::string text;
    for (size_t i = 0; i < levels; ++i) {
      std::string next = i + 1 == levels ? "u@example.com" : "a" + std::to_string(i + 1) + "@example.com";
      text += "a" + std::to_string(i) + "@example.com " + next + "\n";
    }
    return text;
  };
  auto ok = makeDirectory({"u@example.com"}, chain(kMaxAliasDepth));
  EXPECT_EQ(ok->resolve("a0@example.com").outcome, Outcome::kDeliver);
  auto deep = makeDirectory({"u@example.com"}, chain(kMaxAliasDepth + 1));
  EXPECT_EQ(deep->resolve("a0@example.com").outcome, Outcome::kLoop);
  EXPECT_EQ(deep->resolve("a1@example.com").outcome, Outcome::kDeliver);
}

TEST(DirectoryResolve, ExpansionLimit) {
  std::string targets;
  for (size_t i = 0; i <= kMaxAliasExpansion; ++i) targets += "r" + std::to_string(i) + "@remote.example,";
  auto d = makeDirectory({}, "big@example.com " + targets + "\n");
  EXPECT_EQ(d->resolve("big@example.com").outcome, Outcome::kLoop);
}

TEST(DirectoryResolve, LocalDomains) {
  auto d = makeDirectory({"u@example.com"}, "a@example.org u@example.com\n@example.net u@example.com\n");
  EXPECT_TRUE(d->isLocalDomain("example.com"));
  EXPECT_TRUE(d->isLocalDomain("EXAMPLE.org"));
  EXPECT_TRUE(d->isLocalDomain("example.net"));
  EXPECT_FALSE(d->isLocalDomain("example.de"));
  EXPECT_FALSE(d->isLocalDomain(""));
  EXPECT_EQ(d->accountCount(), 1u);
  EXPECT_EQ(d->aliasCount(), 2u);
}

TEST(DirectoryResolve, BuildLowercasesAndKeepsFirstDuplicate) {
  AccountsFile acc;
  acc.accounts.push_back(Account{"A@X.ORG", Scheme::kSha512Crypt, "first", 1});
  acc.accounts.push_back(Account{"a@x.org", Scheme::kSha512Crypt, "second", 2});
  AliasesFile ali;
  ali.aliases.push_back(Alias{"B@X.ORG", {"A@X.ORG"}, 1, 1});
  auto d = Directory::build(std::move(acc), std::move(ali));
  ASSERT_NE(d->findAccount("a@x.org"), nullptr);
  EXPECT_EQ(d->findAccount("a@x.org")->hash, "first");
  EXPECT_EQ(d->accountCount(), 1u);
  EXPECT_EQ(describe(d->resolve("b@x.org")), Names{"a@x.org"});
}

TEST(DirectoryResolve, MayUseSender) {
  auto d = makeDirectory({"alice@example.com", "bob@example.com"},
                         "info@example.com alice@example.com\n"
                         "team@example.com list@example.com, carol@remote.example\n"
                         "list@example.com bob@example.com\n"
                         "@example.com alice@example.com\n"
                         "loop1@example.com loop2@example.com\nloop2@example.com loop1@example.com, bob@example.com\n");
  EXPECT_TRUE(d->mayUseSender("alice@example.com", "alice@example.com"));
  EXPECT_TRUE(d->mayUseSender("alice@example.com", "Alice@Example.COM"));     // case-insensitive
  EXPECT_TRUE(d->mayUseSender("alice@example.com", "info@example.com"));      // exact alias
  EXPECT_FALSE(d->mayUseSender("bob@example.com", "info@example.com"));       // not in its expansion
  EXPECT_TRUE(d->mayUseSender("bob@example.com", "team@example.com"));        // via a nested alias
  EXPECT_TRUE(d->mayUseSender("bob@example.com", "list@example.com"));
  EXPECT_FALSE(d->mayUseSender("alice@example.com", "bob@example.com"));      // someone else's account
  EXPECT_FALSE(d->mayUseSender("alice@example.com", "random@example.com"));   // catch-all: never
  EXPECT_FALSE(d->mayUseSender("alice@example.com", "@example.com"));
  EXPECT_FALSE(d->mayUseSender("alice@example.com", ""));
  EXPECT_FALSE(d->mayUseSender("bob@example.com", "loop1@example.com"));      // broken alias: no
  EXPECT_FALSE(d->mayUseSender("alice@example.com", "alice@remote.example"));
}

// The docker-mailserver example folder: every account's password is "secret".
TEST(DirectoryResolve, LoadsDockerMailserverFolder) {
  std::string dir = std::string(POSTERN_SOURCE_DIR) + "/tests/data/dms/";
  std::vector<std::string> notes;
  auto loaded = loadDirectory(dir + "postfix-accounts.cf", dir + "postfix-virtual.cf", &notes);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  const auto& d = *loaded;
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(d->accountCount(), 5u);
  EXPECT_EQ(d->aliasCount(), 3u);
  for (const Account& a : d->accounts()) {
    EXPECT_TRUE(verifyPassword(a.scheme, a.hash, "secret")) << a.address;
    EXPECT_FALSE(verifyPassword(a.scheme, a.hash, "Secret")) << a.address;
  }
  EXPECT_EQ(describe(d->resolve("info@example.com")), Names{"user1@example.com"});
  EXPECT_EQ(describe(d->resolve("team@example.com")),
            (Names{"user1@example.com", "user2@example.com", "friend@remote.example (remote)"}));
  EXPECT_EQ(describe(d->resolve("whoever@example.org")), Names{"user5@example.org"});
  EXPECT_EQ(describe(d->resolve("user4@example.org")), Names{"user4@example.org"});
  EXPECT_EQ(d->resolve("nobody@example.com").outcome, Outcome::kUnknownUser);
}

class DirectoryLoad : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) {
    std::string path = ::testing::TempDir() + "directory_load_" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
};

TEST_F(DirectoryLoad, MissingAliasesFileIsANote) {
  std::string acc = write("acc1.cf", "u@example.com|{SHA512-CRYPT}" + kHash + "|extra\n");
  std::string missing = ::testing::TempDir() + "directory_load_does_not_exist.cf";
  std::vector<std::string> notes;
  auto d = loadDirectory(acc, missing, &notes);
  ASSERT_TRUE(d.isOk()) << d.status().message();
  EXPECT_EQ((*d)->aliasCount(), 0u);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], acc + ":1: note: ignoring 1 extra '|'-separated field after the password hash of u@example.com");
  EXPECT_EQ(notes[1], missing + ": note: the aliases file does not exist: no aliases");
  EXPECT_TRUE(loadDirectory(acc, "", nullptr).isOk());
}

TEST_F(DirectoryLoad, MissingAccountsFileIsAnError) {
  std::string ali = write("ali1.cf", "a@example.com b@example.com\n");
  auto d = loadDirectory(::testing::TempDir() + "directory_load_nope.cf", ali, nullptr);
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().code(), Status::Code::kNotFound);
}

TEST_F(DirectoryLoad, ParseErrorsNameThePath) {
  std::string acc = write("acc2.cf", "u@example.com|{SHA512-CRYPT}" + kHash + "\n");
  std::string ali = write("ali2.cf", "a@example.com b@example.com\nbroken\n");
  auto d = loadDirectory(acc, ali, nullptr);
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message().rfind(ali + ":2: error: ", 0), 0u) << d.status().message();
}

// Accounts and local alias targets that cannot be a mailbox folder load (a hand-edited
// line must not stop the server) and are listed as FILE:LINE errors for config check.
TEST(DirectoryMailboxNames, ErrorsNameTheLine) {
  auto d = makeDirectory({"ok@example.com", "a/b@example.com", "..@example.com"},
                         "# aliases\n"
                         "x@example.com ok@example.com, a/b@example.com\n"
                         "y@example.com ../../x@example.com\n"
                         "z@example.com a/b@remote.example\n"     // remote: never a folder here
                         "w@example.com v/w@example.com\n"        // an alias: no folder either
                         "v/w@example.com ok@example.com\n");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->resolve("a/b@example.com").outcome, Outcome::kDeliver);   // still loaded; RCPT refuses it
  EXPECT_EQ(mailboxNameErrors(*d, "acc.cf", "virt.cf"),
            (Names{"acc.cf:2: error: account 'a/b@example.com' cannot have a mailbox: the local part 'a/b' contains "
                   "'/' (mail to it is refused with 550 5.1.3)",
                   "acc.cf:3: error: account '..@example.com' cannot have a mailbox: the local part '..' is '..' (the "
                   "parent folder) (mail to it is refused with 550 5.1.3)",
                   "virt.cf:2: error: alias 'x@example.com': target 'a/b@example.com' is in a local domain but cannot "
                   "be a mailbox: the local part 'a/b' contains '/'",
                   "virt.cf:3: error: alias 'y@example.com': target '../../x@example.com' is in a local domain but "
                   "cannot be a mailbox: the local part '../../x' contains '/'"}));
  EXPECT_TRUE(mailboxNameErrors(*makeDirectory({"ok@example.com"}, "x@example.com ok@example.com\n"), "a", "b").empty());
}

}  // namespace
}  // namespace postern::directory
