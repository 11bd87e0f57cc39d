// Table tests for the control socket's request line (src/app/control_request.h).
#include <gtest/gtest.h>

#include "app/control_request.h"

namespace postern::app {
namespace {

using Kind = ControlRequest::Kind;

struct RequestCase {
  const char* name;
  std::string line;
  bool ok;
  Kind kind = Kind::kBanList;
  std::string target = {};
  uint64_t seconds = 0;
  std::string reason = "manual";
  std::string error = {};   // when !ok
};

class ControlRequestTest : public ::testing::TestWithParam<RequestCase> {};

TEST_P(ControlRequestTest, Parses) {
  const RequestCase& c = GetParam();
  auto r = parseControlRequest(c.line);
  ASSERT_EQ(static_cast<bool>(r), c.ok) << (r ? "" : r.status().message());
  if (!c.ok) {
    EXPECT_EQ(r.status().message(), c.error);
    return;
  }
  EXPECT_EQ(r->kind, c.kind);
  EXPECT_EQ(r->target, c.target);
  EXPECT_EQ(r->seconds, c.seconds);
  EXPECT_EQ(r->reason, c.reason);
  // What the command line would send for it parses back the same.
  auto again = parseControlRequest(formatControlRequest(*r));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, r->kind);
  EXPECT_EQ(again->target, r->target);
  EXPECT_EQ(again->seconds, r->seconds);
  EXPECT_EQ(again->reason, r->reason);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ControlRequestTest,
    ::testing::Values(
        RequestCase{"List", "ban list", true, Kind::kBanList},
        RequestCase{"ListWithNewlineAndBlanks", "  ban   list \r\n", true, Kind::kBanList},
        RequestCase{"Del", "ban del 203.0.113.5", true, Kind::kBanDel, "203.0.113.5"},
        RequestCase{"DelPrefix", "ban del 2001:db8:1:2::/64", true, Kind::kBanDel, "2001:db8:1:2::/64"},
        RequestCase{"AddDefaultReason", "ban add 203.0.113.5 3600", true, Kind::kBanAdd, "203.0.113.5", 3600},
        RequestCase{"AddWithReason", "ban add 203.0.113.5 60 too many  spaces ", true, Kind::kBanAdd, "203.0.113.5",
                    60, "too many  spaces"},
        // The duration's digits also occur inside the address: the reason must still be
        // what follows the duration (an earlier version searched for the text of the duration).
        RequestCase{"DurationDigitsInsideAddress", "ban add 10.0.0.1 1 spam run", true, Kind::kBanAdd, "10.0.0.1", 1,
                    "spam run"},
        RequestCase{"Tabs", "ban\tadd\t192.0.2.1\t5\treason", true, Kind::kBanAdd, "192.0.2.1", 5, "reason"},
        RequestCase{"Empty", "", false, Kind::kBanList, "", 0, "", "unknown request"},
        RequestCase{"OtherNoun", "account list", false, Kind::kBanList, "", 0, "", "unknown request"},
        RequestCase{"UnknownVerb", "ban purge", false, Kind::kBanList, "", 0, "", "unknown request"},
        RequestCase{"NoVerb", "ban", false, Kind::kBanList, "", 0, "", "unknown request"},
        RequestCase{"ListWithArgument", "ban list all", false, Kind::kBanList, "", 0, "",
                    "'ban list' takes no arguments"},
        RequestCase{"DelWithoutTarget", "ban del", false, Kind::kBanList, "", 0, "", "usage: ban del <address>"},
        RequestCase{"DelTwoTargets", "ban del 192.0.2.1 192.0.2.2", false, Kind::kBanList, "", 0, "",
                    "usage: ban del <address>"},
        RequestCase{"AddWithoutDuration", "ban add 192.0.2.1", false, Kind::kBanList, "", 0, "",
                    "usage: ban add <address> <seconds> [reason]"},
        RequestCase{"AddZeroSeconds", "ban add 192.0.2.1 0", false, Kind::kBanList, "", 0, "", "bad duration"},
        RequestCase{"AddDurationWithUnit", "ban add 192.0.2.1 5m", false, Kind::kBanList, "", 0, "", "bad duration"},
        RequestCase{"AddTooLong", "ban add 192.0.2.1 315360001", false, Kind::kBanList, "", 0, "", "bad duration"},
        RequestCase{"AddMaximum", "ban add 192.0.2.1 315360000", true, Kind::kBanAdd, "192.0.2.1", 315360000},
        RequestCase{"QueueList", "queue list", true, Kind::kQueueList},
        RequestCase{"QueueRetryAll", "queue retry-all\r\n", true, Kind::kQueueRetryAll},
        RequestCase{"QueueShow", "queue show 6B0F8C1B16A551E7", true, Kind::kQueueShow, "6B0F8C1B16A551E7"},
        RequestCase{"QueueIdUppercased", "queue retry 6b0f8c1b", true, Kind::kQueueRetry, "6B0F8C1B"},
        RequestCase{"QueueDelete", "queue delete ABC", true, Kind::kQueueDelete, "ABC"},
        RequestCase{"QueueBounce", "queue  bounce\tABC", true, Kind::kQueueBounce, "ABC"},
        RequestCase{"QueueListWithArgument", "queue list x", false, Kind::kBanList, "", 0, "",
                    "'queue list' takes no arguments"},
        RequestCase{"QueueShowWithoutId", "queue show", false, Kind::kBanList, "", 0, "", "usage: queue show <queue id>"},
        RequestCase{"QueueTwoIds", "queue delete A B", false, Kind::kBanList, "", 0, "",
                    "usage: queue delete <queue id>"},
        RequestCase{"QueueIdNotHex", "queue show ../etc", false, Kind::kBanList, "", 0, "", "not a queue id: ../etc"},
        RequestCase{"QueueIdTooLong", "queue show 0123456789012345678901234567890123456789A", false, Kind::kBanList,
                    "", 0, "", "not a queue id: 0123456789012345678901234567890123456789A"},
        RequestCase{"QueueUnknownVerb", "queue flush", false, Kind::kBanList, "", 0, "", "unknown request"}),
    [](const ::testing::TestParamInfo<RequestCase>& i) { return i.param.name; });

}  // namespace
}  // namespace postern::app
