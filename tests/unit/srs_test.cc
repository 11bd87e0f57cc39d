// Sender Rewriting Scheme (delivery/srs.h): forward, reverse, parser and timestamps.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "delivery/srs.h"
#include "delivery/srs_secret.h"
#include "util/fs.h"
#include "util/strings.h"

namespace postern::delivery {
namespace {

constexpr char kSecret[] = "0123456789abcdef-test-secret";
constexpr char kDomain[] = "mail.example.test";
constexpr uint64_t kToday = 20000;   // days since the epoch; 20000 % 1024 = 544 = "RA"

Srs makeSrs(uint32_t max_age = kSrsDefaultMaxAgeDays) { return Srs(kSecret, kDomain, max_age); }

TEST(SrsTest, ForwardMatchesAnIndependentHmac) {
  // Expected value computed outside Postern:
  //   base64(HMAC-SHA1(secret, lower("RA" "sender.example" "someone")))[:4]
  auto f = makeSrs().forward("someone@sender.example", kToday);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "SRS0=RQEE=RA=sender.example=someone@mail.example.test");
}

TEST(SrsTest, ForwardThenReverseGivesTheSender) {
  Srs srs = makeSrs();
  for (const char* sender : {"someone@sender.example", "a.b+tag@sub.sender.example", "x=y==z@d.example",
                             "SRS0@d.example", "srs1=@d.example", "Mixed.Case@Example.ORG"}) {
    SCOPED_TRACE(sender);
    auto f = srs.forward(sender, kToday);
    ASSERT_TRUE(f);
    auto r = srs.reverse(*f, kToday);
    ASSERT_TRUE(r.value) << r.reason;
    EXPECT_EQ(r.value->address, sender);
    EXPECT_EQ(r.value->kind, SrsLocal::Kind::kSrs0);
  }
}

TEST(SrsTest, ForwardLeavesSomeSendersAlone) {
  Srs srs = makeSrs();
  EXPECT_FALSE(srs.forward("", kToday));                              // null sender
  EXPECT_FALSE(srs.forward("nodomain", kToday));
  EXPECT_FALSE(srs.forward("@sender.example", kToday));
  EXPECT_FALSE(srs.forward("\"quoted local\"@sender.example", kToday));
  EXPECT_FALSE(srs.forward("user@[192.0.2.1]", kToday));
  EXPECT_FALSE(srs.forward("user@MAIL.example.test", kToday));       // already ours
  EXPECT_FALSE(srs.forward("SRS0=abcd=AB=x.example=y@mail.example.test", kToday));
}

TEST(SrsTest, RewriteLongerThan254OctetsIsNotMade) {
  Srs srs = makeSrs();
  // SRS0= HHHH= TT= domain= local @mail.example.test: 13 + 18 characters around the sender's.
  std::string domain = "sender.example";
  auto with_local = [&](size_t n) { return std::string(n, 'l') + "@" + domain; };
  size_t overhead = std::string("SRS0=HHHH=TT==@").size() + std::string(kDomain).size();
  size_t fits = kSrsMaxAddressLength - overhead - domain.size();
  auto ok = srs.forward(with_local(fits), kToday);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->size(), kSrsMaxAddressLength);
  EXPECT_FALSE(srs.forward(with_local(fits + 1), kToday));
}

TEST(SrsTest, Srs0OfAnotherForwarderBecomesSrs1) {
  Srs srs = makeSrs();
  // Expected hash: base64(HMAC-SHA1(secret, lower("fwd1.example" "=abcd=AB=orig.example=joe")))[:4]
  auto f = srs.forward("SRS0=abcd=AB=orig.example=joe@fwd1.example", kToday);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "SRS1=RXUD=fwd1.example==abcd=AB=orig.example=joe@mail.example.test");
  auto r = srs.reverse(*f, kToday);
  ASSERT_TRUE(r.value) << r.reason;
  EXPECT_EQ(r.value->kind, SrsLocal::Kind::kSrs1);
  EXPECT_EQ(r.value->address, "SRS0=abcd=AB=orig.example=joe@fwd1.example");
}

TEST(SrsTest, Srs1OfAnotherForwarderKeepsTheFirstForwarder) {
  Srs srs = makeSrs();
  auto f = srs.forward("SRS1=zzzz=fwd1.example==abcd=AB=orig.example=joe@fwd2.example", kToday);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "SRS1=RXUD=fwd1.example==abcd=AB=orig.example=joe@mail.example.test");
  // A different separator after the inner tag is kept as it was.
  auto g = srs.forward("SRS0+abcd=AB=orig.example=joe@fwd1.example", kToday);
  ASSERT_TRUE(g);
  EXPECT_NE(g->find("=fwd1.example=+abcd="), std::string::npos) << *g;
  auto r = srs.reverse(*g, kToday);
  ASSERT_TRUE(r.value) << r.reason;
  EXPECT_EQ(r.value->address, "SRS0+abcd=AB=orig.example=joe@fwd1.example");
}

TEST(SrsTest, ReverseIgnoresCase) {
  Srs srs = makeSrs();
  std::string f = *srs.forward("someone@sender.example", kToday);
  std::string lower, upper;
  for (char c : f) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char c : f) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& a : {lower, upper}) {
    SCOPED_TRACE(a);
    auto r = srs.reverse(a, kToday);
    ASSERT_TRUE(r.value) << r.reason;
    EXPECT_EQ(toLower(r.value->address), "someone@sender.example");
  }
}

struct ReverseCase {
  const char* name;
  std::string address;
  SrsError error;
  const char* reason_part;
};

TEST(SrsTest, ReverseRejections) {
  Srs srs = makeSrs();
  std::string good = *srs.forward("someone@sender.example", kToday);   // SRS0=RQEE=RA=...
  std::string tampered = good;
  tampered[5] = tampered[5] == 'A' ? 'B' : 'A';
  std::string other_secret = *Srs("another-secret-0123456789", kDomain, 21).forward("someone@sender.example", kToday);
  const ReverseCase cases[] = {
      {"ordinary address", "someone@mail.example.test", SrsError::kNotSrs, "not an SRS"},
      {"other domain", "SRS0=RQEE=RA=sender.example=someone@elsewhere.example", SrsError::kNotSrs, "SRS domain"},
      {"no at", "SRS0=RQEE=RA=sender.example=someone", SrsError::kNotSrs, "SRS domain"},
      {"tag without separator", "SRS0RQEE=RA=sender.example=someone@mail.example.test", SrsError::kNotSrs, "not an SRS"},
      {"tag alone", "SRS0@mail.example.test", SrsError::kNotSrs, "not an SRS"},
      {"wrong separator in fields", "SRS0=RQEE+RA+sender.example+someone@mail.example.test", SrsError::kSyntax,
       "without"},
      {"missing local", "SRS0=RQEE=RA=sender.example@mail.example.test", SrsError::kSyntax, "local part"},
      {"empty local", "SRS0=RQEE=RA=sender.example=@mail.example.test", SrsError::kSyntax, "local part"},
      {"empty domain", "SRS0=RQEE=RA==someone@mail.example.test", SrsError::kSyntax, "domain"},
      {"short hash", "SRS0=RQE=RA=sender.example=someone@mail.example.test", SrsError::kSyntax, "hash"},
      {"long hash", "SRS0=RQEEE=RA=sender.example=someone@mail.example.test", SrsError::kSyntax, "hash"},
      {"hash not base64", "SRS0=RQ.E=RA=sender.example=someone@mail.example.test", SrsError::kSyntax, "hash"},
      {"timestamp not base32", "SRS0=RQEE=R1=sender.example=someone@mail.example.test", SrsError::kSyntax,
       "timestamp"},
      {"timestamp too long", "SRS0=RQEE=RAA=sender.example=someone@mail.example.test", SrsError::kSyntax,
       "timestamp"},
      {"tampered hash", tampered, SrsError::kBadHash, "does not match"},
      {"other secret", other_secret, SrsError::kBadHash, "does not match"},
      {"tampered domain", "SRS0=RQEE=RA=sender.exampla=someone@mail.example.test", SrsError::kBadHash,
       "does not match"},
      {"tampered local", "SRS0=RQEE=RA=sender.example=someono@mail.example.test", SrsError::kBadHash,
       "does not match"},
      {"srs1 bad hash", "SRS1=AAAA=fwd1.example==abcd=AB=orig.example=joe@mail.example.test", SrsError::kBadHash,
       "does not match"},
      {"srs1 without srs0 part", "SRS1=RXUD=fwd1.example@mail.example.test", SrsError::kSyntax, "SRS0 part"},
      {"srs1 bad srs0 part", "SRS1=RXUD=fwd1.example==abcd=AB@mail.example.test", SrsError::kSyntax, "SRS0 part"},
      {"srs1 empty forwarder", "SRS1=RXUD===abcd=AB=orig.example=joe@mail.example.test", SrsError::kSyntax,
       "forwarder"},
      {"too long", "SRS0=RQEE=RA=sender.example=" + std::string(250, 'x') + "@mail.example.test", SrsError::kSyntax,
       "longer than 254"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = srs.reverse(c.address, kToday);
    EXPECT_FALSE(r.value);
    EXPECT_EQ(srsErrorName(r.error), srsErrorName(c.error));
    EXPECT_NE(r.reason.find(c.reason_part), std::string::npos) << r.reason;
  }
}

TEST(SrsTest, ReverseChecksAge) {
  Srs srs = makeSrs(21);
  std::string f = *srs.forward("someone@sender.example", kToday);
  EXPECT_TRUE(srs.reverse(f, kToday).value);
  EXPECT_TRUE(srs.reverse(f, kToday + 21).value);
  auto old = srs.reverse(f, kToday + 22);
  EXPECT_FALSE(old.value);
  EXPECT_EQ(old.error, SrsError::kExpired);
  EXPECT_NE(old.reason.find("expired"), std::string::npos);
  // A stamp one day ahead reads as made 1023 days ago (previous cycle): expired.
  EXPECT_EQ(srs.reverse(f, kToday - 1).error, SrsError::kExpired);
  // After a whole cycle the stamp repeats: indistinguishable, so fresh again (the spec's limit).
  EXPECT_TRUE(srs.reverse(f, kToday + kSrsTimestampCycle).value);
}

struct FreshCase {
  uint32_t stamp;
  uint64_t today;
  uint32_t max_age;
  bool fresh;
};

TEST(SrsTest, TimestampWrapAround) {
  const FreshCase cases[] = {
      {544, 20000, 21, true},     // same day
      {523, 20000, 21, true},     // exactly max_age
      {522, 20000, 21, false},    // one day more
      {1020, 1024 * 30 + 3, 21, true},    // made 7 days ago, before the wrap
      {1000, 1024 * 30 + 3, 21, false},   // 27 days ago, before the wrap
      {5, 1024 * 30 + 3, 21, false},      // "2 days ahead": from the previous cycle
      {0, 1024 * 30, 21, true},
      {1023, 1024 * 30, 1, true},
      {1022, 1024 * 30, 1, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << c.stamp << " " << c.today << " " << c.max_age);
    EXPECT_EQ(srsTimestampFresh(c.stamp, c.today, c.max_age), c.fresh);
  }
}

TEST(SrsTest, TimestampEncoding) {
  EXPECT_EQ(srsTimestamp(0), "AA");
  EXPECT_EQ(srsTimestamp(31), "A7");
  EXPECT_EQ(srsTimestamp(32), "BA");
  EXPECT_EQ(srsTimestamp(1023), "77");
  EXPECT_EQ(srsTimestamp(1024), "AA");
  for (uint32_t t = 0; t < kSrsTimestampCycle; ++t) {
    auto d = decodeSrsTimestamp(srsTimestamp(t));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, t);
  }
  EXPECT_EQ(decodeSrsTimestamp("ra"), decodeSrsTimestamp("RA"));
  EXPECT_FALSE(decodeSrsTimestamp("A"));
  EXPECT_FALSE(decodeSrsTimestamp("A1"));
  EXPECT_FALSE(decodeSrsTimestamp("A="));
}

TEST(SrsTest, ParserFields) {
  auto p = parseSrsLocal("srs0-RQEE=ra=sender.example=a=b=c");
  ASSERT_TRUE(p.value) << p.reason;
  EXPECT_EQ(p.value->kind, SrsLocal::Kind::kSrs0);
  EXPECT_EQ(p.value->hash, "RQEE");
  EXPECT_EQ(p.value->timestamp, "ra");
  EXPECT_EQ(p.value->domain, "sender.example");
  EXPECT_EQ(p.value->local, "a=b=c");
  auto q = parseSrsLocal("SRS1+RXUD=fwd1.example=-abcd=AB=orig.example=joe");
  ASSERT_TRUE(q.value) << q.reason;
  EXPECT_EQ(q.value->kind, SrsLocal::Kind::kSrs1);
  EXPECT_EQ(q.value->forwarder, "fwd1.example");
  EXPECT_EQ(q.value->srs0_rest, "-abcd=AB=orig.example=joe");
  EXPECT_EQ(parseSrsLocal("SRS2=RQEE=RA=d=l").error, SrsError::kNotSrs);
  EXPECT_EQ(parseSrsLocal("").error, SrsError::kNotSrs);
  EXPECT_EQ(parseSrsLocal("SRS0*RQEE=RA=d=l").error, SrsError::kNotSrs);
}

TEST(SrsSecretTest, CreatedOnceWithRandomBytesMode0600) {
  std::string dir = ::testing::TempDir() + "/srs_secret_test";
  std::system(("rm -rf " + dir).c_str());
  std::string path = dir + "/state/srs-secret";   // the folder is made too
  auto made = createSrsSecretIfMissing(path);
  ASSERT_TRUE(made) << made.status().message();
  EXPECT_TRUE(made.value());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, kSrsSecretMode);
  auto first = readFile(path);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), kSrsSecretBytes);
  EXPECT_TRUE(checkSrsSecret(first.value(), path));
  // Never replaced: a new secret would invalidate every address rewritten before.
  auto again = createSrsSecretIfMissing(path);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again.value());
  EXPECT_EQ(readFile(path).value(), first.value());
  // An operator's secret that is too short is refused, naming the file.
  auto short_one = checkSrsSecret("short", path);
  ASSERT_FALSE(short_one);
  EXPECT_NE(short_one.status().message().find(path), std::string::npos);
  EXPECT_NE(short_one.status().message().find("at least 16"), std::string::npos);
}

}  // namespace
}  // namespace postern::delivery
