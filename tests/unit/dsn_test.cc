// Delivery status notifications (RFC 3464): the parts, per-recipient fields, one-line
// diagnostics, and only the header of the returned message.
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
  in.failed = {{"bob@example.org", "5.1.1", "the mailbox bob@example.org no longer exists"},
               {"carol@example.org", "4.4.7", "delivery time expired;\r\nlast error: disk\nfull"}};
  in.original = "Subject: hello\r\nFrom: alice@example.test\r\n\r\nsecret body\r\n";
  return in;
}

TEST(Dsn, MultipartReportWithOneBlockPerRecipient) {
  std::string m = buildDsn(input());
  EXPECT_NE(m.find("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"=_postern_ABC123\""),
            std::string::npos);
  EXPECT_NE(m.find("To: <alice@example.test>\r\n"), std::string::npos);
  EXPECT_NE(m.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
  EXPECT_NE(m.find("Reporting-MTA: dns; mail.example.test\r\n"), std::string::npos);
  EXPECT_NE(m.find("Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"), std::string::npos);
  EXPECT_NE(m.find("Final-Recipient: rfc822; bob@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("Final-Recipient: rfc822; carol@example.org\r\nAction: failed\r\nStatus: 4.4.7\r\n"),
            std::string::npos);
  // A diagnostic with line breaks stays on one line: it cannot forge header fields.
  EXPECT_NE(m.find("Diagnostic-Code: x-postern; delivery time expired;  last error: disk full\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: alice@example.test\r\n"),
            std::string::npos);
  EXPECT_EQ(m.find("secret body"), std::string::npos) << "only the header is returned";
  EXPECT_TRUE(m.ends_with("\r\n--=_postern_ABC123--\r\n"));
}

TEST(Dsn, StatusForLocalFailures) {
  EXPECT_EQ(statusForLocalFailure(true, "the mailbox x@y no longer exists", false), "5.1.1");
  EXPECT_EQ(statusForLocalFailure(true, "unsafe mailbox address a/b@y: ...", false), "5.1.3");
  EXPECT_EQ(statusForLocalFailure(false, "No space left on device", true), "4.4.7");
  EXPECT_EQ(statusForLocalFailure(true, "something else", false), "5.0.0");
}

}  // namespace
}  // namespace postern::queue
