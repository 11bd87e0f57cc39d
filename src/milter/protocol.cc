// Milter protocol v6 packets (see protocol.h). Wire format, restated from libmilter's
// mfdef.h and Postfix's MILTER_README: every packet is a 4-byte big-endian length that
// counts the command byte and the data, then the command byte, then the data. Strings in
// the data are NUL-terminated; integers are 32-bit big-endian (the connect port is 16-bit).
#include "milter/protocol.h"

#include <fmt/format.h>

namespace postern::milter {
namespace {

void putU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

uint32_t getU32(std::span<const uint8_t> b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

// length | cmd | data
std::string packet(char cmd, std::string_view data) {
  std::string out;
  out.reserve(5 + data.size());
  putU32(out, static_cast<uint32_t>(data.size() + 1));
  out.push_back(cmd);
  out.append(data);
  return out;
}

void putString(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

std::string stringList(const std::vector<std::string>& args) {
  std::string data;
  for (const auto& a : args) putString(data, a);
  return data;
}

// Reads NUL-terminated strings from a reply's data.
class Fields {
 public:
  explicit Fields(std::string_view data) : data_(data) {}
  // The next NUL-terminated string; nullopt when no NUL follows.
  std::optional<std::string> next() {
    size_t nul = data_.find('\0', pos_);
    if (nul == std::string_view::npos) return std::nullopt;
    std::string s(data_.substr(pos_, nul - pos_));
    pos_ = nul + 1;
    return s;
  }
  bool atEnd() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

ParseResult fail(std::string why) {
  ParseResult r;
  r.state = ParseResult::State::kError;
  r.error = std::move(why);
  return r;
}

// Replies that carry text end with a NUL (libmilter always sends it). A missing NUL at the
// very end is tolerated; a NUL inside is not (the text would be cut silently).
std::optional<std::string> wholeString(std::string_view data) {
  if (!data.empty() && data.back() == '\0') data.remove_suffix(1);
  if (data.find('\0') != std::string_view::npos) return std::nullopt;
  return std::string(data);
}

}  // namespace

ParseResult parseReply(std::span<const uint8_t> bytes) {
  ParseResult r;
  if (bytes.size() < 4) return r;   // need more
  uint32_t len = getU32(bytes);
  if (len == 0) return fail("empty packet (no command byte)");
  if (len > kMaxPacket) return fail(fmt::format("packet of {} bytes exceeds the limit of {}", len, kMaxPacket));
  if (bytes.size() - 4 < len) return r;   // need more
  const char cmd = static_cast<char>(bytes[4]);
  std::string_view data(reinterpret_cast<const char*>(bytes.data()) + 5, len - 1);
  Reply& rep = r.reply;
  using K = Reply::Kind;
  auto twoStrings = [&](std::string_view d, const char* what) -> bool {
    Fields f(d);
    auto n = f.next();
    auto v = f.next();
    if (!n || !v) return false;
    (void)what;
    rep.name = std::move(*n);
    rep.value = std::move(*v);
    return true;
  };
  switch (cmd) {
    case 'O':
      // version, actions, protocol; libmilter may append per-stage macro lists (ignored).
      if (data.size() < 12) return fail("option negotiation reply shorter than 12 bytes");
      rep.kind = K::kOptions;
      rep.version = getU32(bytes.subspan(5, 4));
      rep.actions = getU32(bytes.subspan(9, 4));
      rep.protocol = getU32(bytes.subspan(13, 4));
      break;
    case 'c': rep.kind = K::kContinue; break;
    case 'a': rep.kind = K::kAccept; break;
    case 'r': rep.kind = K::kReject; break;
    case 't': rep.kind = K::kTempFail; break;
    case 'd': rep.kind = K::kDiscard; break;
    case 'p': rep.kind = K::kProgress; break;
    case '4': rep.kind = K::kShutdown; break;
    case 's': rep.kind = K::kSkip; break;
    case 'y': {
      auto t = wholeString(data);
      if (!t) return fail("reply code text contains a NUL");
      // "XYZ text": a 4xx or 5xx code, then a space or end (smfi_setreply allows only those).
      if (t->size() < 3 || ((*t)[0] != '4' && (*t)[0] != '5') || (*t)[1] < '0' || (*t)[1] > '9' ||
          (*t)[2] < '0' || (*t)[2] > '9' || (t->size() > 3 && (*t)[3] != ' ' && (*t)[3] != '-'))
        return fail("reply code text does not start with a 4xx/5xx code");
      rep.kind = K::kReplyCode;
      rep.text = std::move(*t);
      break;
    }
    case 'h':
      if (!twoStrings(data, "add header")) return fail("add header reply without name and value");
      if (rep.name.empty()) return fail("add header reply with an empty name");
      rep.kind = K::kAddHeader;
      break;
    case 'i':
    case 'm':
      if (data.size() < 4) return fail("header reply without an index");
      rep.index = getU32(bytes.subspan(5, 4));
      if (!twoStrings(data.substr(4), "header")) return fail("header reply without name and value");
      if (rep.name.empty()) return fail("header reply with an empty name");
      rep.kind = cmd == 'i' ? K::kInsertHeader : K::kChangeHeader;
      break;
    case 'b':
      rep.kind = K::kReplaceBody;
      rep.data.assign(data);
      break;
    case '+':
    case '-': {
      auto a = wholeString(data);
      if (!a || a->empty()) return fail("recipient reply without an address");
      rep.kind = cmd == '+' ? K::kAddRcpt : K::kDeleteRcpt;
      rep.data = std::move(*a);
      break;
    }
    case '2':
    case 'e': {
      // address\0, then optional ESMTP args\0: kept as "address args".
      Fields f(data);
      auto a = f.next();
      if (!a || a->empty()) return fail("address reply without an address");
      rep.data = std::move(*a);
      if (!f.atEnd()) {
        auto args = f.next();
        if (!args) return fail("address reply with unterminated arguments");
        if (!args->empty()) rep.data += " " + *args;
      }
      rep.kind = cmd == '2' ? K::kAddRcpt : K::kChangeFrom;
      break;
    }
    case 'q': {
      auto t = wholeString(data);
      if (!t) return fail("quarantine reason contains a NUL");
      rep.kind = K::kQuarantine;
      rep.data = std::move(*t);
      break;
    }
    case 'l':
      // u32 stage, macro list\0
      if (data.size() < 4) return fail("symbol list reply without a stage");
      rep.kind = K::kSetSymList;
      rep.index = getU32(bytes.subspan(5, 4));
      rep.data.assign(data.substr(4));
      break;
    default: {
      unsigned char u = static_cast<unsigned char>(cmd);
      return fail(u >= 0x20 && u < 0x7f ? fmt::format("unknown reply command '{}'", cmd)
                                        : fmt::format("unknown reply command 0x{:02x}", u));
    }
  }
  r.state = ParseResult::State::kDone;
  r.consumed = 4 + size_t(len);
  return r;
}

std::string encodeOptionNegotiation(uint32_t actions, uint32_t protocol) {
  std::string data;
  putU32(data, kProtocolVersion);
  putU32(data, actions);
  putU32(data, protocol);
  return packet('O', data);
}

std::string encodeMacros(char for_command, const std::vector<std::pair<std::string, std::string>>& macros) {
  std::string data(1, for_command);
  for (const auto& [name, value] : macros) {
    putString(data, name);
    putString(data, value);
  }
  return packet('D', data);
}

std::string encodeConnect(std::string_view hostname, const std::optional<std::pair<std::string, uint16_t>>& inet,
                          bool ipv6) {
  std::string data;
  putString(data, hostname);
  if (!inet) {
    data.push_back('U');   // unknown family: nothing follows
  } else {
    data.push_back(ipv6 ? '6' : '4');
    data.push_back(static_cast<char>((inet->second >> 8) & 0xff));
    data.push_back(static_cast<char>(inet->second & 0xff));
    putString(data, inet->first);
  }
  return packet('C', data);
}

std::string encodeHelo(std::string_view helo) {
  std::string data;
  putString(data, helo);
  return packet('H', data);
}

std::string encodeMail(const std::vector<std::string>& args) { return packet('M', stringList(args)); }
std::string encodeRcpt(const std::vector<std::string>& args) { return packet('R', stringList(args)); }
std::string encodeData() { return packet('T', {}); }

std::string encodeHeader(std::string_view name, std::string_view value) {
  std::string data;
  putString(data, name);
  putString(data, value);
  return packet('L', data);
}

std::string encodeEndOfHeaders() { return packet('N', {}); }
std::string encodeBody(std::string_view chunk) { return packet('B', chunk); }
std::string encodeEndOfMessage() { return packet('E', {}); }
std::string encodeAbort() { return packet('A', {}); }
std::string encodeQuit() { return packet('Q', {}); }

}  // namespace postern::milter
