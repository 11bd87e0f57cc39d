#include "smtp/client/reply_parser.h"

#include <algorithm>
#include <cctype>

namespace postern::smtp::client {

namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// RFC 3463 §2: class "." subject "." detail; class 2, 4 or 5, subject and detail 1..3 digits.
// Returns the code's length when `text` starts with one followed by SP or the end.
size_t enhancedPrefix(std::string_view text) {
  if (text.size() < 5 || !isDigit(text[0]) || text[1] != '.') return 0;
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t start = i;
    while (i < text.size() && isDigit(text[i]) && i - start < 4) ++i;
    size_t n = i - start;
    if (n < 1 || n > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

std::string describe(std::string_view line) {
  std::string out;
  for (char ch : line.substr(0, 60)) {
    unsigned char u = static_cast<unsigned char>(ch);
    out.push_back(u >= 0x20 && u < 0x7f ? ch : '.');
  }
  if (line.size() > 60) out += "...";
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

std::string Reply::text() const {
  std::string out = std::to_string(code);
  bool first = true;
  for (const std::string& l : lines) {
    out += first ? " " : " / ";
    out += l;
    first = false;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

ReplyParser::Step ReplyParser::feed(std::string_view in) {
  Step step;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    size_t take = (nl == std::string_view::npos ? in.size() : nl + 1) - pos;
    if (partial_.size() + take > kMaxClientReplyLine) {
      step.state = State::kError;
      step.consumed = pos + (kMaxClientReplyLine - partial_.size()) + 1;  // up to the first byte too many
      step.error = "line too long";
      partial_.clear();
      building_ = Reply();
      return step;
    }
    partial_.append(in.substr(pos, take));
    pos += take;
    if (nl == std::string_view::npos) break;  // a partial line: keep it

    std::string line = std::move(partial_);
    partial_.clear();
    line.pop_back();  // '\n'
    if (!line.empty() && line.back() == '\r') line.pop_back();

    // Reply-code = %x32-35 %x30-35 %x30-39, then SP, "-" or the end of the line.
    bool ok = line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && isDigit(line[1]) && isDigit(line[2]) &&
              (line.size() == 3 || line[3] == ' ' || line[3] == '-');
    int code = ok ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') : 0;
    if (ok && building_.code != 0 && code != building_.code) {
      step.state = State::kError;
      step.consumed = pos;
      step.error = "reply code changed inside a multi-line reply: " + describe(line);
      building_ = Reply();
      return step;
    }
    if (!ok) {
      step.state = State::kError;
      step.consumed = pos;
      step.error = "not a reply line: '" + describe(line) + "'";
      building_ = Reply();
      return step;
    }
    if (building_.lines.size() >= kMaxClientReplyLines) {
      step.state = State::kError;
      step.consumed = pos;
      step.error = "too many lines in one reply";
      building_ = Reply();
      return step;
    }
    const bool last = line.size() == 3 || line[3] == ' ';
    std::string text = line.size() > 4 ? line.substr(4) : std::string();
    if (building_.code == 0) {
      building_.code = code;
      if (size_t n = enhancedPrefix(text); n && text[0] - '0' == code / 100) building_.enhanced = text.substr(0, n);
    }
    building_.lines.push_back(std::move(text));
    if (last) {
      step.state = State::kDone;
      step.consumed = pos;
      step.reply = std::move(building_);
      building_ = Reply();
      return step;
    }
  }
  step.state = State::kNeedMore;
  step.consumed = in.size();
  return step;
}

Capabilities parseEhlo(const Reply& ehlo_reply) {
  Capabilities caps;
  caps.esmtp = ehlo_reply.code == 250;
  if (!caps.esmtp) return caps;
  auto addAuth = [&caps](std::string_view list) {
    size_t i = 0;
    while (i < list.size()) {
      while (i < list.size() && (list[i] == ' ' || list[i] == '\t')) ++i;
      size_t start = i;
      while (i < list.size() && list[i] != ' ' && list[i] != '\t') ++i;
      if (i > start) {
        std::string mech = upper(list.substr(start, i - start));
        if (std::find(caps.auth.begin(), caps.auth.end(), mech) == caps.auth.end()) caps.auth.push_back(mech);
      }
    }
  };
  // Line 0 is the server's domain and greeting; the others are ehlo-lines.
  for (size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    std::string_view l = ehlo_reply.lines[i];
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    size_t end = 0;
    while (end < l.size() && l[end] != ' ' && l[end] != '=' && l[end] != '\t') ++end;
    const std::string keyword = upper(l.substr(0, end));
    std::string_view args = end < l.size() ? l.substr(end + 1) : std::string_view();
    if (keyword == "PIPELINING") {
      caps.pipelining = true;
    } else if (keyword == "STARTTLS") {
      caps.starttls = true;
    } else if (keyword == "8BITMIME") {
      caps.eightbitmime = true;
    } else if (keyword == "SMTPUTF8") {
      caps.smtputf8 = true;
    } else if (keyword == "CHUNKING") {
      caps.chunking = true;
    } else if (keyword == "DSN") {
      caps.dsn = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      caps.enhanced_status = true;
    } else if (keyword == "SIZE") {
      // RFC 1870 §4: "SIZE" [SP number]; no number or 0: no fixed limit. A value that
      // is not a number (or overflows) is taken as "no announced limit".
      while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
      uint64_t v = 0;
      bool good = !args.empty();
      for (char ch : args) {
        if (ch == ' ' || ch == '\t') break;
        if (!isDigit(ch) || v > (UINT64_MAX - 9) / 10) {
          good = false;
          break;
        }
        v = v * 10 + static_cast<uint64_t>(ch - '0');
      }
      caps.size = good ? v : 0;
    } else if (keyword == "AUTH") {
      addAuth(args);  // "AUTH PLAIN LOGIN" and the pre-standard "AUTH=PLAIN LOGIN"
    }
  }
  return caps;
}

std::string xtext(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u < '!' || u > '~' || u == '+' || u == '=') {
      out.push_back('+');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

}  // namespace postern::smtp::client
