// libFuzzer target for the SMTP client's reply reader (smtp/client/reply_parser.h): RFC 5321
// §4.2 replies, RFC 3463 enhanced codes, EHLO keywords and RFC 3461 xtext. The same bytes fed
// whole and in pieces must give the same replies; invariants are checked with __builtin_trap
// so a broken one is reported as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/client/reply_parser.h"

namespace {

using namespace postern::smtp::client;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

struct Outcome {
  std::vector<Reply> replies;
  bool error = false;
  size_t used = 0;
};

// Feeds `in` in pieces of `piece` bytes (0: whole), collecting replies until an error.
Outcome run(std::string_view in, size_t piece) {
  Outcome out;
  ReplyParser p;
  std::string_view rest = in;
  while (!rest.empty()) {
    std::string_view chunk = piece ? rest.substr(0, piece) : rest;
    ReplyParser::Step s = p.feed(chunk);
    check(s.consumed <= chunk.size());
    out.used += s.consumed;
    rest.remove_prefix(s.consumed);
    if (s.state == ReplyParser::State::kNeedMore) {
      check(s.consumed == chunk.size());
      continue;
    }
    if (s.state == ReplyParser::State::kError) {
      check(!s.error.empty());
      out.error = true;
      break;
    }
    check(s.consumed > 0);
    const Reply& r = s.reply;
    check(r.code >= 200 && r.code <= 599);
    check(!r.lines.empty() && r.lines.size() <= kMaxClientReplyLines);
    for (const std::string& l : r.lines) {
      check(l.find('\n') == std::string::npos);
      check(l.size() + 2 <= kMaxClientReplyLine);
    }
    if (!r.enhanced.empty()) {
      check(r.enhanced[0] - '0' == r.code / 100);
      check(r.lines[0].compare(0, r.enhanced.size(), r.enhanced) == 0);
      check(r.enhanced.size() >= 5 && r.enhanced.size() <= 9);
    }
    std::string t = r.text();
    check(t.compare(0, 3, std::to_string(r.code)) == 0);
    Capabilities c = parseEhlo(r);
    check(c.esmtp == (r.code == 250));
    for (const std::string& m : c.auth) {
      check(!m.empty());
      for (char ch : m) check(ch != ' ' && ch != '\t' && !(ch >= 'a' && ch <= 'z'));
    }
    out.replies.push_back(r);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  Outcome whole = run(in, 0);
  for (size_t piece : {size_t{1}, size_t{7}}) {
    if (piece == 1 && size > 20000) continue;
    Outcome split = run(in, piece);
    check(split.error == whole.error);
    check(split.replies.size() == whole.replies.size());
    for (size_t i = 0; i < whole.replies.size(); ++i) {
      check(split.replies[i].code == whole.replies[i].code);
      check(split.replies[i].enhanced == whole.replies[i].enhanced);
      check(split.replies[i].lines == whole.replies[i].lines);
    }
    if (!whole.error) check(split.used == whole.used);
  }

  // xtext: printable, no '=', every '+' starts "+HH", and it decodes back to the input.
  std::string x = xtext(in);
  std::string back;
  for (size_t i = 0; i < x.size(); ++i) {
    check(x[i] >= '!' && x[i] <= '~' && x[i] != '=');
    if (x[i] == '+') {
      check(i + 2 < x.size() && isHex(x[i + 1]) && isHex(x[i + 2]));
      back.push_back(static_cast<char>(std::stoi(x.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      back.push_back(x[i]);
    }
  }
  check(back == in);
  return 0;
}
