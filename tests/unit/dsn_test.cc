// Delivery status notifications (RFC 3464): the parts, per-message and per-recipient
// fields (RFC 3461 ENVID and ORCPT included), one-line diagnostics, what of the original is
// returned (RET=HDRS, RET=FULL, the size cap) and the four actions.
#include <gtest/gtest.h>

#include "queue/dsn.h"

namespace postern::queue {
namespace {

DsnInput input() {
  DsnInput in;
  in.reporting_mta = "mail.example.test";
  in.boundary_seed = "ABC123";
  in.original_queue_id = "Q1";
  in.original_sender = "alice@example.test";
  in.arrival_us = 1'700'000'000'000'000ull;
  in.now_us = 1'700'000'100'000'000ull;
  in.recipients = {{"bob@example.org", "5.1.1", "the mailbox bob@example.org no longer exists"},
                   {"carol@example.org", "4.4.7", "delivery time expired;\r\nlast error: disk\nfull"}};
  in.original = "Subject: hello\r\nFrom: alice@example.test\r\n\r\nsecret body\r\n";
  return in;
}

bool has(const std::string& m, std::string_view s) { return m.find(s) != std::string::npos; }

TEST(Dsn, MultipartReportWithOneBlockPerRecipient) {
  std::string m = buildDsn(input());
  EXPECT_TRUE(has(m, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"=_postern_ABC123\""));
  EXPECT_TRUE(has(m, "To: <alice@example.test>\r\n"));
  EXPECT_TRUE(has(m, "Subject: Undelivered Mail Returned to Sender\r\n"));
  EXPECT_TRUE(has(m, "Auto-Submitted: auto-replied\r\n"));
  EXPECT_TRUE(has(m, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.test\r\n"))
      << "no Original-Envelope-Id without ENVID";
  EXPECT_TRUE(has(m, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
  EXPECT_TRUE(has(m, "\r\n\r\nFinal-Recipient: rfc822; bob@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"))
      << "no Original-Recipient without ORCPT";
  EXPECT_TRUE(has(m, "Final-Recipient: rfc822; carol@example.org\r\nAction: failed\r\nStatus: 4.4.7\r\n"));
  // A diagnostic with line breaks stays on one line: it cannot forge header fields.
  EXPECT_TRUE(has(m, "Diagnostic-Code: x-postern; delivery time expired;  last error: disk full\r\n"));
  EXPECT_FALSE(has(m, "Will-Retry-Until"));
  EXPECT_TRUE(m.ends_with("\r\n--=_postern_ABC123--\r\n"));
}

TEST(Dsn, EnvidAndOrcptAreReported) {
  DsnInput in = input();
  in.envid = "QQ314159";
  in.recipients[0].original_recipient = "rfc822;Bob@Example.org";
  std::string m = buildDsn(in);
  // RFC 3464 §2.2: Original-Envelope-Id comes first; §2.3: Original-Recipient before Final-Recipient.
  EXPECT_TRUE(has(m, "Content-Type: message/delivery-status\r\n\r\nOriginal-Envelope-Id: QQ314159\r\n"
                     "Reporting-MTA: dns; mail.example.test\r\n"));
  EXPECT_TRUE(has(m, "\r\nOriginal-Recipient: rfc822;Bob@Example.org\r\nFinal-Recipient: rfc822; bob@example.org\r\n"));
  EXPECT_FALSE(has(m, "Original-Recipient: rfc822;carol"));
  in.envid = "a\r\nBcc: x";
  EXPECT_TRUE(has(buildDsn(in), "Original-Envelope-Id: a  Bcc: x\r\n")) << "kept on one line";
}

TEST(Dsn, RetFullReturnsTheWholeMessageAndRetHdrsOnlyItsHeader) {
  DsnInput in = input();
  in.return_full = true;
  std::string m = buildDsn(in);
  EXPECT_TRUE(has(m, "Content-Type: message/rfc822\r\n\r\nSubject: hello\r\nFrom: alice@example.test\r\n\r\nsecret body\r\n"));
  EXPECT_FALSE(has(m, "text/rfc822-headers"));
  EXPECT_TRUE(has(m, "It is attached below.\r\n"));

  in.return_full = false;   // RET=HDRS
  m = buildDsn(in);
  EXPECT_TRUE(has(m, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@example.test\r\n"));
  EXPECT_FALSE(has(m, "secret body")) << "only the header is returned";
  EXPECT_FALSE(has(m, "message/rfc822"));
  EXPECT_TRUE(m.ends_with("\r\n--=_postern_ABC123--\r\n"));
}

TEST(Dsn, TooLargeAMessageIsReturnedAsItsHeader) {
  DsnInput in = input();
  std::string big = "Subject: big\r\n\r\n" + std::string(kMaxReturnedMessageBytes, 'x') + "\r\n";
  in.original = big;
  std::string m = buildDsn(in);
  EXPECT_TRUE(has(m, "Content-Type: text/rfc822-headers\r\n\r\nSubject: big\r\n"));
  EXPECT_TRUE(has(m, "too large to return whole"));
  EXPECT_LT(m.size(), 8192u);
}

TEST(Dsn, DelayedDeliveredAndRelayed) {
  DsnInput in = input();
  in.action = DsnAction::kDelayed;
  in.retry_until_us = 1'700'432'000'000'000ull;
  in.recipients = {{"bob@example.org", "4.0.0", "not a folder"}};
  std::string m = buildDsn(in);
  EXPECT_TRUE(has(m, "Subject: Delayed Mail (still being retried)\r\n"));
  EXPECT_TRUE(has(m, "Action: delayed\r\nStatus: 4.0.0\r\n"));
  EXPECT_TRUE(has(m, "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"));
  EXPECT_TRUE(has(m, "you do not need to send the message again"));
  EXPECT_TRUE(has(m, "text/rfc822-headers")) << "a warning returns the header only";
  EXPECT_FALSE(has(m, "secret body"));

  in.action = DsnAction::kDelivered;
  in.recipients = {{"bob@example.org", "2.0.0", ""}};
  m = buildDsn(in);
  EXPECT_TRUE(has(m, "Subject: Successful Mail Delivery Report\r\n"));
  EXPECT_TRUE(has(m, "Your message was delivered"));
  EXPECT_TRUE(has(m, "Action: delivered\r\nStatus: 2.0.0\r\nLast-Attempt-Date:"));
  EXPECT_FALSE(has(m, "Diagnostic-Code")) << "nothing to diagnose";
  EXPECT_FALSE(has(m, "Will-Retry-Until"));
  EXPECT_FALSE(has(m, "secret body"));

  in.action = DsnAction::kRelayed;
  DsnRecipient r{"dan@remote.example", "2.0.0", "250 2.0.0 Ok: queued as 123"};
  r.diagnostic_type = "smtp";
  r.remote_mta = "mx.remote.example";
  in.recipients = {r};
  m = buildDsn(in);
  EXPECT_TRUE(has(m, "Subject: Relayed Mail Delivery Report\r\n"));
  EXPECT_TRUE(has(m, "does not report delivery"));
  EXPECT_TRUE(has(m, "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.remote.example\r\n"
                     "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 123\r\n"));
  EXPECT_EQ(dsnActionName(DsnAction::kFailed), "failed");
}

TEST(Dsn, StatusForLocalFailures) {
  EXPECT_EQ(statusForLocalFailure(true, "the mailbox x@y no longer exists", false), "5.1.1");
  EXPECT_EQ(statusForLocalFailure(true, "unsafe mailbox address a/b@y: ...", false), "5.1.3");
  EXPECT_EQ(statusForLocalFailure(false, "No space left on device", true), "4.4.7");
  EXPECT_EQ(statusForLocalFailure(true, "something else", false), "5.0.0");
}

}  // namespace
}  // namespace postern::queue
