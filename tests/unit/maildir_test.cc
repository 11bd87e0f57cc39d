#include <gtest/gtest.h>

#include "delivery/maildir.h"

namespace postern::delivery {
namespace {

TEST(Maildir, NameFollowsTheContract) {
  EXPECT_EQ(maildirName(1'700'000'000'000'042ull, 123, 9, "mail.example.test", 2048),
            "1700000000.M42P123Q9.mail.example.test,S=2048");
  EXPECT_EQ(maildirHost("a/b:c"), "a\\057b\\072c");
}

TEST(Maildir, MailboxDirRefusesEscapes) {
  EXPECT_EQ(*mailboxDir("/m", "alice@example.test"), "/m/example.test/alice");
  for (const char* bad : {"../x@example.test", "a/b@example.test", "a@..", "@example.test", "alice@", "alice"})
    EXPECT_FALSE(mailboxDir("/m", bad)) << bad;
}

TEST(Maildir, RenderAddsTraceHeadersAndUsesLf) {
  std::string out = renderForMaildir("s@x.test", "alice@example.test", "Subject: a\r\n\r\nline\r\nbare\rcr\r\n");
  EXPECT_EQ(out, "Return-Path: <s@x.test>\nDelivered-To: alice@example.test\nSubject: a\n\nline\nbare\rcr\n");
  EXPECT_EQ(renderForMaildir("", "a@b", "x\r\n"), "Return-Path: <>\nDelivered-To: a@b\nx\n");
}

}  // namespace
}  // namespace postern::delivery
