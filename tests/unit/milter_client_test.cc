// Milter client (milter/client.h): applyModifications over header/body edits, and the
// client against a scripted filter on a loopback TCP socket (negotiation, replies,
// modifications, progress, failures turning into default_action).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <unistd.h>

#include <string>
#include <vector>

#include "milter/client.h"
#include "run_sync.h"

namespace postern::milter {
namespace {

using namespace std::string_literals;
using HK = HeaderEdit::Kind;

const std::string kMsg =
    "Received: from x\r\n\tby y\r\n"
    "Subject: hello\r\n"
    "X-A: 1\r\n"
    "x-a: 2\r\n"
    "\r\n"
    "body line\r\n";

TEST(MilterApplyTest, HeaderEdits) {
  struct Case {
    const char* what;
    std::vector<HeaderEdit> edits;
    std::string want_header;   // the header section, empty line excluded
  };
  const std::string orig = "Received: from x\r\n\tby y\r\nSubject: hello\r\nX-A: 1\r\nx-a: 2\r\n";
  const Case cases[] = {
      {"none", {}, orig},
      {"add appends at the end", {{HK::kAdd, 0, "X-Spam", "Yes"}}, orig + "X-Spam: Yes\r\n"},
      {"add keeps a given leading space", {{HK::kAdd, 0, "X-S", " v"}}, orig + "X-S: v\r\n"},
      {"add folds LF as CRLF", {{HK::kAdd, 0, "X-R", "a\n\tb"}}, orig + "X-R: a\r\n\tb\r\n"},
      {"insert at top", {{HK::kInsert, 0, "X-T", "t"}}, "X-T: t\r\n" + orig},
      {"insert at 1", {{HK::kInsert, 1, "X-T", "t"}},
       "Received: from x\r\n\tby y\r\nX-T: t\r\nSubject: hello\r\nX-A: 1\r\nx-a: 2\r\n"},
      {"insert past the end appends", {{HK::kInsert, 99, "X-T", "t"}}, orig + "X-T: t\r\n"},
      {"change first occurrence, any case", {{HK::kChange, 1, "x-A", "one"}},
       "Received: from x\r\n\tby y\r\nSubject: hello\r\nx-A: one\r\nx-a: 2\r\n"},
      {"change second occurrence", {{HK::kChange, 2, "X-A", "two"}},
       "Received: from x\r\n\tby y\r\nSubject: hello\r\nX-A: 1\r\nX-A: two\r\n"},
      {"index 0 means the first", {{HK::kChange, 0, "Subject", "new"}},
       "Received: from x\r\n\tby y\r\nSubject: new\r\nX-A: 1\r\nx-a: 2\r\n"},
      {"delete a folded field", {{HK::kChange, 1, "Received", ""}}, "Subject: hello\r\nX-A: 1\r\nx-a: 2\r\n"},
      {"delete second X-A", {{HK::kChange, 2, "X-A", ""}},
       "Received: from x\r\n\tby y\r\nSubject: hello\r\nX-A: 1\r\n"},
      {"change of a missing occurrence adds", {{HK::kChange, 3, "X-A", "3"}}, orig + "X-A: 3\r\n"},
      {"delete of a missing field does nothing", {{HK::kChange, 1, "X-None", ""}}, orig},
      {"edits apply in order", {{HK::kAdd, 0, "X-B", "b"}, {HK::kChange, 1, "X-B", ""}}, orig},
  };
  for (const auto& c : cases) {
    Modifications m;
    m.headers = c.edits;
    EXPECT_EQ(applyModifications(kMsg, m), c.want_header + "\r\nbody line\r\n") << c.what;
  }
}

TEST(MilterApplyTest, BodyReplacement) {
  Modifications m;
  m.body = "new\nbody\r\n";
  m.headers.push_back({HK::kAdd, 0, "X-Scanned", "yes"});
  EXPECT_EQ(applyModifications(kMsg, m),
            "Received: from x\r\n\tby y\r\nSubject: hello\r\nX-A: 1\r\nx-a: 2\r\nX-Scanned: yes\r\n\r\nnew\r\nbody\r\n");
}

TEST(MilterApplyTest, MessageWithoutBodyOrFinalCrlf) {
  Modifications m;
  m.headers.push_back({HK::kAdd, 0, "X-Spam", "Yes"});
  EXPECT_EQ(applyModifications("Subject: a", m), "Subject: a\r\nX-Spam: Yes\r\n");
  EXPECT_EQ(applyModifications("Subject: a\r\n\r\n", m), "Subject: a\r\nX-Spam: Yes\r\n\r\n");
}

// ---- the client against a scripted filter ----

std::string pkt(char cmd, const std::string& data) {
  uint32_t len = static_cast<uint32_t>(data.size() + 1);
  return std::string{char(len >> 24), char((len >> 16) & 0xff), char((len >> 8) & 0xff), char(len & 0xff), cmd} + data;
}
std::string u32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

// A filter that answers each command it reads (macros excepted) with the next scripted
// reply; records the command bytes it saw.
struct Script {
  std::vector<std::string> replies;   // per command that expects a reply (in order)
  std::string seen;                   // command letters received
  std::vector<std::string> headers;   // 'L' data
  std::vector<std::string> macros;    // 'D' data
  bool close_after_optneg = false;
  bool hang = false;                  // when the script runs out: keep reading, answer nothing
  std::chrono::milliseconds delay{0}; // before each reply
  // At end of message: each piece sent after its delay (from the previous piece).
  std::vector<std::pair<std::chrono::milliseconds, std::string>> eom_timed;
};

template <class Acceptor>
net::awaitable<void> serve(Acceptor& acc, Script& s) {
  auto [ec, sock] = co_await acc.async_accept(net::use_nothrow);
  if (ec) co_return;
  size_t next = 0;
  for (;;) {
    char hdr[4];
    auto [e1, n1] = co_await asio::async_read(sock, asio::buffer(hdr, 4), net::use_nothrow);
    if (e1) co_return;
    uint32_t len = (uint32_t(uint8_t(hdr[0])) << 24) | (uint32_t(uint8_t(hdr[1])) << 16) |
                   (uint32_t(uint8_t(hdr[2])) << 8) | uint8_t(hdr[3]);
    std::string body(len, '\0');
    auto [e2, n2] = co_await asio::async_read(sock, asio::buffer(body), net::use_nothrow);
    if (e2) co_return;
    char cmd = body[0];
    s.seen.push_back(cmd);
    if (cmd == 'L') s.headers.push_back(body.substr(1));
    if (cmd == 'D') s.macros.push_back(body.substr(1));
    if (cmd == 'D' || cmd == 'A') continue;
    if (cmd == 'Q') co_return;
    if (cmd == 'O' && s.close_after_optneg) co_return;
    if (cmd == 'E' && !s.eom_timed.empty()) {
      for (const auto& [after, piece] : s.eom_timed) {
        asio::steady_timer t(sock.get_executor());
        t.expires_after(after);
        co_await t.async_wait(net::use_nothrow);
        auto [ew, nw] = co_await asio::async_write(sock, asio::buffer(piece), net::use_nothrow);
        if (ew) co_return;
      }
      continue;
    }
    if (next >= s.replies.size()) {
      if (s.hang) continue;
      co_return;
    }
    std::string out = s.replies[next++];
    if (out.empty()) continue;   // a command the filter asked not to answer
    if (s.delay.count() > 0) {
      asio::steady_timer t(sock.get_executor());
      t.expires_after(s.delay);
      co_await t.async_wait(net::use_nothrow);
    }
    co_await asio::async_write(sock, asio::buffer(out), net::use_nothrow);
  }
}

config::Milter milterConfig(uint16_t port) {
  config::Milter c;
  c.name = "test";
  c.tcp = Endpoint{*IpAddress::parse("127.0.0.1"), port};
  c.connect_timeout_ms = 1000;
  c.command_timeout_ms = 300;
  c.message_timeout_ms = 600;
  return c;
}

struct Outcome {
  std::vector<Decision> decisions;
  Modifications mods;
  Script script;
};

// Runs open, connect, helo, mail, rcpt, message against `script`.
Outcome exchange(Script script, config::Milter* cfg_out = nullptr, bool listen = true) {
  asio::io_context io;
  net::tcp::acceptor acc(io, net::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t port = acc.local_endpoint().port();
  if (!listen) acc.close();
  config::Milter cfg = cfg_out ? *cfg_out : milterConfig(port);
  cfg.tcp->port = port;
  Outcome out;
  out.script = std::move(script);
  if (listen) asio::co_spawn(io, serve(acc, out.script), asio::detached);
  auto run = [&]() -> net::awaitable<void> {
    Client c(io.get_executor(), cfg);
    out.decisions.push_back(co_await c.open());
    ConnectInfo ci;
    ci.client_hostname = "[192.0.2.7]";
    ci.client_ip = *IpAddress::parse("192.0.2.7");
    ci.client_port = 1234;
    ci.our_hostname = "mx.test";
    out.decisions.push_back(co_await c.connect(ci));
    std::string helo = "client.test";
    out.decisions.push_back(co_await c.helo(helo));
    std::string from = "a@b.test", qid = "Q1", to = "c@d.test";
    std::vector<std::string> none;
    out.decisions.push_back(co_await c.mail(from, none, qid));
    out.decisions.push_back(co_await c.rcpt(to, none));
    auto msg = std::make_shared<const std::string>("Subject: hi\r\nX-B:  two\r\n\r\nbody\r\n");
    out.decisions.push_back(co_await c.message(msg, &out.mods));
    co_await c.quit();
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run();
  return out;
}

std::string options(uint32_t actions, uint32_t protocol) { return pkt('O', u32(6) + u32(actions) + u32(protocol)); }

using A = Decision::Action;

TEST(MilterClientTest, FullExchangeCollectsModifications) {
  Script s;
  const std::string c = pkt('c', "");
  s.replies = {options(kActAddHeaders | kActChangeHeaders | kActQuarantine | kActChangeBody, kProtoHeaderLeadingSpace),
               c, c, c, c, c /*DATA*/, c, c /*headers*/, c /*EOH*/, c /*body*/,
               pkt('p', "") + pkt('h', "X-Spam\0Yes\0"s) + pkt('m', u32(1) + "Subject\0[SPAM] hi\0"s) +
                   pkt('b', "new\r\n") + pkt('q', "junk\0"s) + pkt('c', "")};
  Outcome o = exchange(s);
  ASSERT_EQ(o.decisions.size(), 6u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(o.decisions[i].action, A::kContinue) << i;
  EXPECT_EQ(o.decisions[5].action, A::kAccept);   // 'c' at end of message
  EXPECT_EQ(o.script.seen, "ODCHDMDRDTLLNBDEQ");
  // Macros per stage: the command they go with, then name\0value\0 pairs.
  ASSERT_EQ(o.script.macros.size(), 5u);
  EXPECT_EQ(o.script.macros[0],
            "Cj\0mx.test\0{daemon_name}\0postern\0{client_addr}\0" "192.0.2.7\0{client_name}\0[192.0.2.7]\0"s);
  EXPECT_EQ(o.script.macros[1], "M{i}\0Q1\0{mail_addr}\0a@b.test\0"s);
  EXPECT_EQ(o.script.macros[2], "R{rcpt_addr}\0c@d.test\0"s);
  EXPECT_EQ(o.script.macros[3], "T{i}\0Q1\0"s);
  EXPECT_EQ(o.script.macros[4], "E{i}\0Q1\0"s);
  ASSERT_EQ(o.script.headers.size(), 2u);
  EXPECT_EQ(o.script.headers[0], "Subject\0 hi\0"s);   // leading space kept (HDR_LEADSPC)
  ASSERT_EQ(o.mods.headers.size(), 2u);
  EXPECT_EQ(o.mods.headers[0].name, "X-Spam");
  EXPECT_EQ(o.mods.headers[1].kind, HK::kChange);
  EXPECT_EQ(o.mods.body, "new\r\n");
  EXPECT_EQ(o.mods.quarantine, "junk");
}

TEST(MilterClientTest, SkippedStagesAndNoReplyFlags) {
  Script s;
  const std::string c = pkt('c', "");
  // The filter wants no connect/helo, no reply for headers, no body.
  s.replies = {options(kActAddHeaders, kProtoNoConnect | kProtoNoHelo | kProtoNrHeader | kProtoNoBody),
               c /*MAIL*/, c /*RCPT*/, c /*DATA*/, "", "", c /*EOH*/, pkt('a', "")};
  Outcome o = exchange(s);
  EXPECT_EQ(o.script.seen, "ODMDRDTLLNDEQ");
  ASSERT_EQ(o.script.headers.size(), 2u);
  EXPECT_EQ(o.script.headers[1], "X-B\0two\0"s);   // without HDR_LEADSPC: leading spaces dropped
  EXPECT_EQ(o.decisions.back().action, A::kAccept);
  for (const auto& d : o.decisions) EXPECT_FALSE(d.unavailable);
}

TEST(MilterClientTest, ReplyCodeAtRcptIsTheReject) {
  Script s;
  const std::string c = pkt('c', "");
  s.replies = {options(0, 0), c, c, c, pkt('y', "550 5.7.1 no such user here\0"s), pkt('y', "451 4.7.1 later\0"s)};
  // Configure: no headers/body stages so that DATA's reply ends the message.
  Outcome o = exchange(s);
  ASSERT_EQ(o.decisions.size(), 6u);
  EXPECT_EQ(o.decisions[4].action, A::kReject);
  EXPECT_EQ(o.decisions[4].code, 550);
  EXPECT_EQ(o.decisions[4].enhanced, "5.7.1");
  EXPECT_EQ(o.decisions[4].text, "no such user here");
  EXPECT_EQ(o.decisions[5].action, A::kTempFail);   // at DATA
  EXPECT_EQ(o.decisions[5].code, 451);
}

TEST(MilterClientTest, RejectWithoutText) {
  Script s;
  const std::string c = pkt('c', "");
  s.replies = {options(0, 0), c, c, pkt('r', "")};
  Outcome o = exchange(s);
  EXPECT_EQ(o.decisions[3].action, A::kReject);
  EXPECT_EQ(o.decisions[3].code, 0);   // the session uses its default text
}

TEST(MilterClientTest, UnreachableFilterGivesDefaultActionLoggedOnce) {
  for (auto def : {config::MilterDefault::kTempFail, config::MilterDefault::kAccept}) {
    config::Milter cfg = milterConfig(1);
    cfg.default_action = def;
    Outcome o = exchange(Script{}, &cfg, /*listen=*/false);
    ASSERT_EQ(o.decisions.size(), 6u);
    EXPECT_FALSE(o.decisions[0].failure.empty());
    for (size_t i = 0; i < o.decisions.size(); ++i) {
      EXPECT_TRUE(o.decisions[i].unavailable) << i;
      if (i > 0) {
        EXPECT_TRUE(o.decisions[i].failure.empty()) << i;
      }
      EXPECT_EQ(o.decisions[i].action, def == config::MilterDefault::kAccept ? A::kAccept : A::kTempFail);
    }
    if (def == config::MilterDefault::kTempFail) {
      EXPECT_EQ(o.decisions[4].code, 451);
    }
  }
}

TEST(MilterClientTest, ProtocolErrorsAndTimeoutsFail) {
  const std::string c = pkt('c', "");
  struct Case {
    const char* what;
    std::vector<std::string> replies;
    size_t failing_step;   // index into decisions where `failure` is set
  };
  const Case cases[] = {
      {"garbage reply", {options(0, 0), pkt('Z', "")}, 1},
      {"modification before end of message", {options(kActAddHeaders, 0), pkt('h', "A\0b\0"s)}, 1},
      {"version 7", {pkt('O', u32(7) + u32(0) + u32(0))}, 0},
      {"unoffered protocol bit", {options(0, 0x80000000u)}, 0},
      {"header added without the action", {options(0, kProtoNoConnect | kProtoNoHelo | kProtoNoMail | kProtoNoRcpt |
                                                          kProtoNoData | kProtoNoHeaders | kProtoNoEoh | kProtoNoBody),
                                           pkt('h', "A\0b\0"s)}, 5},
      {"filter closes the connection", {options(0, 0)}, 1},
      {"shutdown", {options(0, 0), pkt('4', "")}, 1},
  };
  for (const auto& k : cases) {
    Script s;
    s.replies = k.replies;
    Outcome o = exchange(s);
    ASSERT_EQ(o.decisions.size(), 6u) << k.what;
    for (size_t i = 0; i < o.decisions.size(); ++i) {
      EXPECT_EQ(o.decisions[i].unavailable, i >= k.failing_step) << k.what << " " << i;
      EXPECT_EQ(!o.decisions[i].failure.empty(), i == k.failing_step) << k.what << " " << i;
    }
  }
}

TEST(MilterClientTest, UnixSocketFilter) {
  std::string path = fmt::format("/tmp/postern-milter-test-{}.sock", ::getpid());
  ::unlink(path.c_str());
  asio::io_context io;
  asio::local::stream_protocol::acceptor acc(io, asio::local::stream_protocol::endpoint(path));
  Script s;
  s.replies = {options(0, kProtoNoConnect | kProtoNoHelo | kProtoNoRcpt | kProtoNoData), pkt('y', "550 5.7.1 no\0"s)};
  asio::co_spawn(io, serve(acc, s), asio::detached);
  config::Milter cfg = milterConfig(0);
  cfg.tcp.reset();
  cfg.unix_path = path;
  std::vector<Decision> ds;
  auto run = [&]() -> net::awaitable<void> {
    Client c(io.get_executor(), cfg);
    ds.push_back(co_await c.open());
    std::string from = "a@b.test", qid = "Q";
    std::vector<std::string> none;
    ds.push_back(co_await c.mail(from, none, qid));
    co_await c.quit();
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run();
  ::unlink(path.c_str());
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_FALSE(ds[0].unavailable) << ds[0].failure;
  EXPECT_EQ(ds[1].action, A::kReject);
  EXPECT_EQ(ds[1].text, "no");
  EXPECT_EQ(s.seen, "ODMQ");
}

TEST(MilterClientTest, SilentFilterTimesOut) {
  Script s;
  s.replies = {options(0, 0)};
  s.hang = true;
  auto start = std::chrono::steady_clock::now();
  Outcome o = exchange(s);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(o.decisions.size(), 6u);
  EXPECT_FALSE(o.decisions[0].unavailable);
  EXPECT_NE(o.decisions[1].failure.find("timeout"), std::string::npos) << o.decisions[1].failure;
  EXPECT_TRUE(o.decisions[5].unavailable);
  // One command_timeout (300 ms), not one per stage.
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST(MilterClientTest, ProgressExtendsTheWait) {
  // command_timeout 300 ms, message_timeout 600 ms. The filter answers the end of message
  // after 1000 ms, sending progress every 250 ms: each moves the deadline to 300 ms later.
  using ms = std::chrono::milliseconds;
  const uint32_t only_eom = kProtoNoConnect | kProtoNoHelo | kProtoNoMail | kProtoNoRcpt | kProtoNoData |
                            kProtoNoHeaders | kProtoNoEoh | kProtoNoBody;
  Script s;
  s.replies = {options(kActAddHeaders, only_eom)};
  s.hang = true;
  s.eom_timed = {{ms(250), pkt('p', "")}, {ms(250), pkt('p', "")}, {ms(250), pkt('p', "")},
                 {ms(250), pkt('h', "X-A\0b\0"s) + pkt('c', "")}};
  Outcome o = exchange(s);
  EXPECT_EQ(o.decisions[5].action, A::kAccept) << o.decisions[5].failure;
  EXPECT_FALSE(o.decisions[5].unavailable);
  EXPECT_EQ(o.mods.headers.size(), 1u);

  // One progress at 250 ms, then nothing until 750 ms: the deadline (600 ms; 300 ms after
  // the progress is earlier) passes first.
  Script quiet;
  quiet.replies = s.replies;
  quiet.hang = true;
  quiet.eom_timed = {{ms(250), pkt('p', "")}, {ms(500), pkt('c', "")}};   // 'c' at 750 ms: too late
  Outcome q = exchange(quiet);
  EXPECT_NE(q.decisions[5].failure.find("timeout"), std::string::npos) << q.decisions[5].failure;
}

}  // namespace
}  // namespace postern::milter
