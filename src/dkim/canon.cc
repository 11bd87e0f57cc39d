// RFC 6376 §3.4 canonicalization, §5.4 header selection, §3.7 header hash input.
#include "dkim/canon.h"

#include <fmt/format.h>

#include <map>

#include "util/strings.h"

namespace postern::dkim {
namespace {


// RFC 5322 §3.6.8 field-name: printable US-ASCII except colon.
bool validFieldName(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126 || c == ':') return false;
  return true;
}

// Runs of WSP become one SP; WSP at the end is dropped, and at the start too with `trim_start`.
void appendCollapsed(std::string& out, std::string_view s, bool trim_start) {
  bool pending_space = false;
  bool at_start = true;
  for (char c : s) {
    if (isWsp(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !(trim_start && at_start)) out += ' ';
    pending_space = false;
    at_start = false;
    out += c;
  }
}

}  // namespace

Result<MessageParts> splitMessage(std::string_view message) {
  MessageParts m;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find("\r\n", pos);
    size_t next = eol == std::string_view::npos ? message.size() : eol + 2;
    std::string_view line = message.substr(pos, (eol == std::string_view::npos ? message.size() : eol) - pos);
    if (line.empty() && eol != std::string_view::npos) {
      m.body = message.substr(next);
      return m;
    }
    if (isWsp(line[0])) {
      if (m.fields.empty()) return Status::invalid("the header section starts with a continuation line");
      HeaderField& f = m.fields.back();
      size_t start = static_cast<size_t>(f.raw.data() - message.data());
      f.raw = message.substr(start, pos + line.size() - start);
      if (f.raw.size() > kMaxHeaderFieldBytes)
        return Status::invalid(fmt::format("a header field is longer than {} bytes", kMaxHeaderFieldBytes));
    } else {
      size_t colon = line.find(':');
      std::string_view name = colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
      while (!name.empty() && isWsp(name.back())) name.remove_suffix(1);
      if (!validFieldName(name)) return Status::invalid("a line of the header section is not a header field");
      if (m.fields.size() >= kMaxHeaderFields)
        return Status::invalid(fmt::format("more than {} header fields", kMaxHeaderFields));
      m.fields.push_back(HeaderField{name, line});
    }
    pos = next;
  }
  return m;  // no empty line: the whole message is header, the body is empty
}

std::string canonicalHeader(const HeaderField& f, Canon c) {
  if (c == Canon::kSimple) return std::string(f.raw) + "\r\n";
  // §3.4.2: lower-case name; unfold; WSP runs to one SP; no WSP at the value's ends or
  // around the colon.
  std::string out = toLower(f.name);
  out += ':';
  std::string_view value = f.raw.substr(f.raw.find(':') + 1);
  std::string unfolded;
  unfolded.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    unfolded += value[i];
  }
  appendCollapsed(out, unfolded, true);
  out += "\r\n";
  return out;
}

void BodyCanonicalizer::feed(std::string_view data) {
  partial_.append(data);
  size_t pos = 0;
  for (;;) {
    size_t eol = partial_.find("\r\n", pos);
    if (eol == std::string::npos) break;
    line(std::string_view(partial_).substr(pos, eol - pos));
    pos = eol + 2;
  }
  partial_.erase(0, pos);
}

void BodyCanonicalizer::finish() {
  if (!partial_.empty()) line(partial_);  // a last line without CRLF gets one (§3.4.3, §3.4.4)
  partial_.clear();
  if (!wrote_ && canon_ == Canon::kSimple) sink_("\r\n");  // §3.4.3: an empty body is one CRLF
  empty_lines_ = 0;                                        // trailing empty lines are ignored
}

void BodyCanonicalizer::line(std::string_view content) {
  std::string relaxed;
  if (canon_ == Canon::kRelaxed) {
    // §3.4.4: WSP at the end of the line goes, other WSP runs become one SP.
    appendCollapsed(relaxed, content, false);
    content = relaxed;
  }
  if (content.empty()) {
    ++empty_lines_;
    return;
  }
  for (; empty_lines_ > 0; --empty_lines_) sink_("\r\n");
  sink_(content);
  sink_("\r\n");
  wrote_ = true;
}

std::string canonicalBody(std::string_view body, Canon c) {
  std::string out;
  BodyCanonicalizer b(c, [&out](std::string_view s) { out.append(s); });
  b.feed(body);
  b.finish();
  return out;
}

const std::vector<std::string_view> kSignedHeaders = {"From",
                                                      "Reply-To",
                                                      "Sender",
                                                      "Subject",
                                                      "Date",
                                                      "Message-ID",
                                                      "To",
                                                      "Cc",
                                                      "In-Reply-To",
                                                      "References",
                                                      "MIME-Version",
                                                      "Content-Type",
                                                      "Content-Transfer-Encoding",
                                                      "Content-Disposition",
                                                      "Content-ID",
                                                      "List-Id",
                                                      "List-Help",
                                                      "List-Unsubscribe",
                                                      "List-Unsubscribe-Post",
                                                      "List-Subscribe",
                                                      "List-Post",
                                                      "List-Owner",
                                                      "List-Archive",
                                                      "Resent-Date",
                                                      "Resent-From",
                                                      "Resent-To",
                                                      "Resent-Cc",
                                                      "Resent-Message-ID"};

std::vector<std::string> chooseSignedHeaders(const MessageParts& m) {
  std::vector<std::string> h;
  for (std::string_view name : kSignedHeaders) {
    size_t n = 0;
    for (const auto& f : m.fields) n += iequals(f.name, name) ? 1 : 0;
    if (iequals(name, "From")) ++n;  // oversigned: a From added later fails verification
    for (size_t i = 0; i < n; ++i) h.emplace_back(name);
  }
  return h;
}

std::string headerHashInput(const MessageParts& m, const std::vector<std::string>& h, Canon c) {
  std::map<std::string, size_t> used;  // per lower-cased name: instances taken from the bottom
  std::string out;
  for (const auto& name : h) {
    size_t& taken = used[toLower(name)];
    size_t skip = taken++;
    for (auto it = m.fields.rbegin(); it != m.fields.rend(); ++it) {
      if (!iequals(it->name, name)) continue;
      if (skip-- == 0) {
        out += canonicalHeader(*it, c);
        break;
      }
    }
  }
  return out;
}

std::optional<std::string> fromDomain(const MessageParts& m) {
  const HeaderField* from = nullptr;
  for (const auto& f : m.fields) {
    if (!iequals(f.name, "From")) continue;
    if (from) return std::nullopt;  // RFC 5322 §3.6: exactly one From
    from = &f;
  }
  if (!from) return std::nullopt;
  std::string value(from->raw.substr(from->raw.find(':') + 1));
  // The address is inside <...> when there is a display name; otherwise the value itself,
  // without comments.
  std::string addr;
  size_t lt = value.rfind('<');
  if (lt != std::string::npos) {
    size_t gt = value.find('>', lt);
    if (gt == std::string::npos) return std::nullopt;
    addr = value.substr(lt + 1, gt - lt - 1);
  } else {
    int depth = 0;
    for (char ch : value) {
      if (ch == '(')
        ++depth;
      else if (ch == ')' && depth > 0)
        --depth;
      else if (depth == 0)
        addr += ch;
    }
  }
  size_t at = addr.rfind('@');
  if (at == std::string::npos) return std::nullopt;
  std::string domain = toLower(trim(addr.substr(at + 1)));
  if (domain.empty() || domain.size() > 253 || domain.front() == '.' || domain.back() == '.') return std::nullopt;
  for (char ch : domain)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) return std::nullopt;
  return domain;
}

}  // namespace postern::dkim
