// Fuzz target: spool recovery over damaged segments. A valid segment of messages is built,
// then the fuzzer's bytes overwrite a stretch of it (or are appended), and the spool is
// opened on the in-memory file system. Recovery must not crash, and every message whose
// records the damage did not touch must come back whole: records before the damage (the
// valid prefix) and, thanks to the record marker, records after it too.
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/mem_env.h"
#include "log/log.h"
#include "spool/spool.h"

using namespace postern;
using namespace postern::spool;

namespace {
constexpr uint32_t kNonce = 0x0badcafe;
constexpr size_t kMaxMessages = 24;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    log::init(log::Format::kText, log::Level::kError);
    return true;
  }();
  (void)quiet;
  if (size < 4) return 0;
  size_t n = 1 + data[0] % kMaxMessages;
  bool append = data[1] & 1;
  uint16_t where = static_cast<uint16_t>(data[2] | data[3] << 8);
  std::string_view garbage(reinterpret_cast<const char*>(data + 4), size - 4);

  std::string seg = encodeSegmentHeader(kNonce);
  struct Placed {
    std::string qid, body;
    size_t begin, end;
  };
  std::vector<Placed> placed;
  for (size_t i = 0; i < n; ++i) {
    Envelope env;
    env.queue_id = "Q" + std::to_string(i);
    env.accepted_us = 1'700'000'000'000'000ull + i;
    env.mail_from = "s@x.test";
    env.recipients.push_back({"r@y.test", "r@y.test", true});
    std::string body = "Subject: " + std::to_string(i) + "\r\n\r\n" + std::string(i * 7 % 50, 'a' + i % 26) + "\r\n";
    env.size = body.size();
    size_t begin = seg.size();
    seg += encodeMessage(kNonce, env, body);
    placed.push_back({env.queue_id, body, begin, seg.size()});
  }
  size_t dmg_begin, dmg_end;
  if (append) {
    dmg_begin = seg.size();
    seg += garbage;
  } else {
    dmg_begin = kSegmentHeaderSizeV2 + where % (seg.size() - kSegmentHeaderSizeV2);
    size_t len = std::min(garbage.size(), seg.size() - dmg_begin);
    std::memcpy(seg.data() + dmg_begin, garbage.data(), len);
    if (len == 0) return 0;
  }
  dmg_end = append ? seg.size() : dmg_begin + std::min(garbage.size(), seg.size() - dmg_begin);

  io::MemEnv mem;
  (void)mem.put("/s/seg-0000000000000001.log", seg);
  std::vector<Pending> pending;
  auto sp = Spool::open(mem, "/s", &pending);
  assert(sp);
  for (const auto& p : placed) {
    bool touched = p.end > dmg_begin && p.begin < dmg_end;
    if (touched) continue;
    auto body = (*sp)->readBody(p.qid);
    assert(body && *body == p.body);
  }
  return 0;
}
