// The queue's notifications honour RFC 3461 requests: NOTIFY (no failure notice for NEVER
// or a list without FAILURE; delay warnings only where DELAY is wanted), RET, ENVID, ORCPT;
// and a delay warning is sent once (RcptState::warned). No deliverer is set, so every
// attempt of a local recipient is a temporary failure ("local delivery is not running").
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "io/env.h"
#include "queue/queue.h"
#include "spool/record.h"
#include "spool/spool.h"

namespace postern::queue {
namespace {

using namespace std::chrono_literals;

class QueueDsnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/queue_dsn_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    auto sp = spool::Spool::open(io::posixEnv(), dir_, nullptr);
    ASSERT_TRUE(sp) << sp.status().message();
    spool_ = std::move(*sp);
  }
  void TearDown() override {
    queue_.reset();
    spool_.reset();
    std::filesystem::remove_all(dir_);
  }
  void startQueue(QueueOptions o) {
    o.hostname = "mail.example.test";
    queue_ = std::make_unique<Queue>(
        *spool_, o, [](const std::string& s) -> std::optional<std::string> { return s; },
        [this] { return spool::newEnvelope(seq_++); });
  }
  spool::Envelope message(std::vector<spool::Recipient> rcpts, uint64_t age_us) {
    spool::Envelope e = spool::newEnvelope(seq_++);
    e.accepted_us -= age_us;
    e.mail_from = "alice@example.test";
    e.recipients = std::move(rcpts);
    return e;
  }
  void commitAndAdd(spool::Envelope e, std::string body) {
    e.size = body.size();
    auto b = std::make_shared<const std::string>(std::move(body));
    std::promise<Status> p;
    spool_->commit(e, b, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get());
    queue_->add(e, b);
  }
  // The notifications in the spool (flag kBounce), with their bodies.
  std::vector<std::string> notifications() {
    std::vector<std::string> out;
    for (const auto& p : spool_->list())
      if (p.env.flags & spool::kBounce) {
        auto body = spool_->readBody(p.env.queue_id);
        out.push_back(body ? *body : std::string());
      }
    return out;
  }
  template <class F>
  void waitFor(F f, const char* what) {
    for (int i = 0; i < 500 && !f(); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(f()) << what;
  }
  static spool::Recipient rcpt(std::string a, uint8_t notify = 0, std::string orcpt = "") {
    spool::Recipient r;
    r.address = a;
    r.mailbox = a;
    r.notify = notify;
    r.orcpt = std::move(orcpt);
    return r;
  }
  std::string dir_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<Queue> queue_;
  std::atomic<uint64_t> seq_{1};
};

TEST_F(QueueDsnTest, OneDelayWarningForTheRecipientsThatWantIt) {
  QueueOptions o;
  o.lifetime = 1h;
  o.retry_min = 20ms;
  o.retry_max = 20ms;
  o.delay_warning = 1s;
  startQueue(o);
  auto e = message({rcpt("r0@example.test"), rcpt("r1@example.test", spool::kNotifyFailure),
                    rcpt("r2@example.test", spool::kNotifyNever),
                    rcpt("r3@example.test", spool::kNotifyDelay | spool::kNotifySuccess, "rfc822;R3@example.test")},
                   10'000'000);
  std::string qid = e.queue_id;
  commitAndAdd(e, "Subject: slow\r\n\r\nbody\r\n");
  waitFor([&] { return queue_->stats().attempts >= 6; }, "several attempts");
  auto n = notifications();
  ASSERT_EQ(n.size(), 1u) << "one warning, however many deferrals";
  EXPECT_NE(n[0].find("Action: delayed"), std::string::npos);
  EXPECT_NE(n[0].find("Final-Recipient: rfc822; r0@example.test"), std::string::npos);
  EXPECT_NE(n[0].find("Original-Recipient: rfc822;R3@example.test\r\nFinal-Recipient: rfc822; r3@example.test"),
            std::string::npos);
  EXPECT_EQ(n[0].find("r1@example.test"), std::string::npos) << "NOTIFY without DELAY";
  EXPECT_EQ(n[0].find("r2@example.test"), std::string::npos) << "NOTIFY=NEVER";
  EXPECT_NE(n[0].find("Will-Retry-Until: "), std::string::npos);
  EXPECT_EQ(n[0].find("body\r\n"), std::string::npos) << "a warning returns the header only";
  auto msg = spool_->find(qid);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(msg->state[0].warned);
  EXPECT_FALSE(msg->state[1].warned);
  EXPECT_FALSE(msg->state[2].warned);
  EXPECT_TRUE(msg->state[3].warned);
  EXPECT_EQ(queue_->stats().delay_warnings, 2u);
}

TEST_F(QueueDsnTest, NoWarningBeforeDelayWarningOrWhenItIsZero) {
  QueueOptions o;
  o.lifetime = 1h;
  o.retry_min = 20ms;
  o.retry_max = 20ms;
  o.delay_warning = 0ms;
  startQueue(o);
  commitAndAdd(message({rcpt("r0@example.test")}, 10'000'000), "Subject: a\r\n\r\nb\r\n");
  waitFor([&] { return queue_->stats().attempts >= 4; }, "several attempts");
  EXPECT_TRUE(notifications().empty());
}

TEST_F(QueueDsnTest, ExpiryNotifiesOnlyRecipientsThatAskForFailures) {
  QueueOptions o;
  o.lifetime = 1s;   // the message is older: the first temporary failure expires it
  startQueue(o);
  auto e = message({rcpt("never@example.test", spool::kNotifyNever), rcpt("success@example.test", spool::kNotifySuccess),
                    rcpt("dflt@example.test", 0, "rfc822;Dflt@example.test")},
                   10'000'000);
  e.ret = spool::DsnRet::kHdrs;
  e.envid = "QQ314159";
  commitAndAdd(e, "Subject: gone\r\n\r\nsecret body\r\n");
  waitFor([&] { return queue_->stats().bounced >= 3 && !notifications().empty(); }, "the bounce");
  auto n = notifications();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_NE(n[0].find("Action: failed\r\nStatus: 4.4.7"), std::string::npos);
  EXPECT_NE(n[0].find("Original-Envelope-Id: QQ314159\r\n"), std::string::npos);
  EXPECT_NE(n[0].find("Original-Recipient: rfc822;Dflt@example.test\r\n"), std::string::npos);
  EXPECT_EQ(n[0].find("never@example.test"), std::string::npos);
  EXPECT_EQ(n[0].find("success@example.test"), std::string::npos);
  EXPECT_NE(n[0].find("text/rfc822-headers"), std::string::npos);
  EXPECT_EQ(n[0].find("secret body"), std::string::npos) << "RET=HDRS";
}

TEST_F(QueueDsnTest, EveryRecipientWithNotifyNeverMeansNoNotificationAtAll) {
  QueueOptions o;
  o.lifetime = 1s;
  startQueue(o);
  commitAndAdd(message({rcpt("a@example.test", spool::kNotifyNever)}, 10'000'000), "Subject: x\r\n\r\ny\r\n");
  waitFor([&] { return queue_->stats().bounced >= 1 && queue_->size() == 0; }, "the failure");
  EXPECT_TRUE(notifications().empty());
  EXPECT_EQ(queue_->stats().notifications, 0u);
}

TEST_F(QueueDsnTest, NotifySuccessMakesARelayedNotice) {
  QueueOptions o;
  o.retry_min = 1h;   // one attempt only
  startQueue(o);
  auto e = message({rcpt("far@remote.example", spool::kNotifySuccess), rcpt("quiet@remote.example")}, 0);
  std::string qid = e.queue_id;
  commitAndAdd(e, "Subject: hi\r\n\r\nbody\r\n");
  waitFor([&] { return queue_->stats().attempts >= 1 && queue_->scheduled() >= 1; }, "the first attempt");
  queue_->notifySuccess(qid, {{0, "mx.remote.example", "250 2.0.0 Ok"}, {1, "mx.remote.example", "250 2.0.0 Ok"}},
                        DsnAction::kRelayed);
  waitFor([&] { return !notifications().empty(); }, "the notice");
  auto n = notifications();
  ASSERT_EQ(n.size(), 1u);
  EXPECT_NE(n[0].find("Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.remote.example\r\n"
                      "Diagnostic-Code: smtp; 250 2.0.0 Ok\r\n"),
            std::string::npos);
  EXPECT_EQ(n[0].find("quiet@remote.example"), std::string::npos) << "no NOTIFY=SUCCESS";
}

}  // namespace
}  // namespace postern::queue
