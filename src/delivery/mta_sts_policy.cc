// RFC 8461 §3.1, §3.2, §3.3, §4.1: see mta_sts_policy.h.
#include "delivery/mta_sts_policy.h"

#include <fmt/format.h>

#include "util/strings.h"

namespace postern::delivery {
namespace {

constexpr std::string_view kStsVersion = "v=STSv1";
// §3.1 / §3.2 ABNF: ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".").
constexpr size_t kMaxFieldNameLength = 32;
// §3.2 ABNF: sts-policy-max-age-value = 1*10(DIGIT).
constexpr size_t kMaxAgeDigits = 10;
// A chunk-size line ("1a2b;ext=v") longer than this is refused.
constexpr size_t kMaxChunkLineBytes = 1024;
// Chunk sizes in hex: more digits than this would already exceed any limit here.
constexpr size_t kMaxChunkSizeDigits = 8;

bool isNameChar(char c) {
  return isAlnum(c) || c == '_' || c == '-' || c == '.';
}
// §3.1 sts-ext-value: %x21-3A / %x3C / %x3E-7E (no ";", "=", blanks, controls).
bool isTxtValueChar(char c) {
  return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

std::string_view trimWsp(std::string_view s) {
  while (!s.empty() && isWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWsp(s.back())) s.remove_suffix(1);
  return s;
}

bool isFieldName(std::string_view s) {
  if (s.empty() || s.size() > kMaxFieldNameLength || !isAlnum(s[0])) return false;
  for (char c : s)
    if (!isNameChar(c)) return false;
  return true;
}

bool isStsId(std::string_view s) {
  if (s.empty() || s.size() > kStsMaxIdLength) return false;
  for (char c : s)
    if (!isAlnum(c)) return false;
  return true;
}

// Printable form of untrusted text for error messages: at most 64 bytes, controls as '?'.
std::string shown(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out;
  for (char c : s.substr(0, kMaxShown)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// A host name as used for comparison: lower case, one trailing dot dropped.
std::string comparable(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return toLower(name);
}

}  // namespace

const char* stsModeName(StsMode m) {
  switch (m) {
    case StsMode::kNone: return "none";
    case StsMode::kTesting: return "testing";
    case StsMode::kEnforce: return "enforce";
  }
  return "none";
}

// ---- §3.1 -----------------------------------------------------------------------------------

bool isStsRecordCandidate(std::string_view text) {
  if (!text.starts_with(kStsVersion)) return false;
  if (text.size() == kStsVersion.size()) return true;
  const char next = text[kStsVersion.size()];
  return next == ';' || isWsp(next);
}

Result<std::string> parseStsRecord(std::string_view t) {
  while (!t.empty() && isWsp(t.back())) t.remove_suffix(1);
  if (!isStsRecordCandidate(t)) return Status::invalid("does not begin with v=STSv1");
  size_t p = kStsVersion.size();
  size_t fields = 0;
  bool have_id = false;
  std::string id;
  while (p < t.size()) {
    while (p < t.size() && isWsp(t[p])) ++p;
    if (p >= t.size() || t[p] != ';') return Status::invalid(fmt::format("expected ';' at offset {}", p));
    ++p;
    while (p < t.size() && isWsp(t[p])) ++p;
    if (p == t.size()) break;  // the optional final separator
    const size_t name_start = p;
    while (p < t.size() && isNameChar(t[p])) ++p;
    const std::string_view name = t.substr(name_start, p - name_start);
    if (!isFieldName(name)) return Status::invalid(fmt::format("bad field name at offset {}", name_start));
    if (p >= t.size() || t[p] != '=') return Status::invalid(fmt::format("field '{}' has no '='", shown(name)));
    ++p;
    const size_t value_start = p;
    while (p < t.size() && isTxtValueChar(t[p])) ++p;
    const std::string_view value = t.substr(value_start, p - value_start);
    if (value.empty()) return Status::invalid(fmt::format("field '{}' has an empty value", shown(name)));
    ++fields;
    if (name == "id" && !have_id) {
      if (!isStsId(value))
        return Status::invalid(fmt::format("id '{}' is not 1 to 32 letters and digits", shown(value)));
      id = std::string(value);
      have_id = true;
    }
  }
  if (fields == 0) return Status::invalid("no fields after v=STSv1");
  if (!have_id) return Status::invalid("no id field");
  return id;
}

StsRecord selectStsRecord(const std::vector<std::string>& records) {
  StsRecord out;
  const std::string* only = nullptr;
  size_t candidates = 0;
  for (const auto& r : records) {
    if (!isStsRecordCandidate(r)) continue;
    ++candidates;
    only = &r;
  }
  if (candidates == 0) return out;
  if (candidates > 1) {
    out.kind = StsRecord::Kind::kInvalid;
    out.error = fmt::format("{} v=STSv1 records (exactly one is allowed)", candidates);
    return out;
  }
  auto id = parseStsRecord(*only);
  if (!id) {
    out.kind = StsRecord::Kind::kInvalid;
    out.error = id.status().message();
    return out;
  }
  out.kind = StsRecord::Kind::kValid;
  out.id = std::move(id).value();
  return out;
}

// ---- §3.2 -----------------------------------------------------------------------------------

Result<StsPolicyText> parseStsPolicy(std::string_view body) {
  if (body.size() > kStsMaxPolicyBytes)
    return Status::invalid(
        fmt::format("policy of {} bytes is over the {} byte limit", body.size(), kStsMaxPolicyBytes));
  StsPolicyText out;
  bool have_version = false, have_mode = false, have_max_age = false;
  size_t number = 0;
  while (!body.empty()) {
    ++number;
    const size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trimWsp(line).empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Status::invalid(fmt::format("line {}: no ':'", number));
    const std::string_view key = line.substr(0, colon);
    const std::string_view value = trimWsp(line.substr(colon + 1));
    if (!isFieldName(key)) return Status::invalid(fmt::format("line {}: bad key '{}'", number, shown(key)));
    if (key == "version") {
      if (have_version) continue;  // §3.2: the first occurrence counts
      if (value != "STSv1")
        return Status::invalid(fmt::format("line {}: version '{}' is not STSv1", number, shown(value)));
      have_version = true;
    } else if (key == "mode") {
      if (have_mode) continue;
      if (value == "enforce")
        out.mode = StsMode::kEnforce;
      else if (value == "testing")
        out.mode = StsMode::kTesting;
      else if (value == "none")
        out.mode = StsMode::kNone;
      else
        return Status::invalid(fmt::format("line {}: unknown mode '{}'", number, shown(value)));
      have_mode = true;
    } else if (key == "max_age") {
      if (have_max_age) continue;
      auto v = value.size() <= kMaxAgeDigits ? parseDecimal(value, kStsMaxAge) : std::nullopt;
      if (!v)
        return Status::invalid(
            fmt::format("line {}: max_age '{}' is not a number from 0 to {}", number, shown(value), kStsMaxAge));
      out.max_age = static_cast<uint32_t>(*v);
      have_max_age = true;
    } else if (key == "mx") {
      const bool wildcard = value.starts_with("*.");
      std::string host = normalizeDomain(wildcard ? value.substr(2) : value);
      if (host.empty())
        return Status::invalid(fmt::format("line {}: mx '{}' is not a host name or *.domain", number, shown(value)));
      if (out.mx.size() == kStsMaxMxPatterns)
        return Status::invalid(fmt::format("more than {} mx patterns", kStsMaxMxPatterns));
      out.mx.push_back(wildcard ? "*." + host : host);
    }
    // Any other key: an extension, ignored (§3.2).
  }
  if (!have_version) return Status::invalid("no version field");
  if (!have_mode) return Status::invalid("no mode field");
  if (!have_max_age) return Status::invalid("no max_age field");
  if (out.mx.empty() && out.mode != StsMode::kNone)
    return Status::invalid(fmt::format("mode {} without any mx pattern", stsModeName(out.mode)));
  return out;
}

// ---- §4.1 -----------------------------------------------------------------------------------

std::string normalizeDomain(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > kMaxDomainLength) return {};
  for (std::string_view label : split(name, '.')) {
    if (label.empty() || label.size() > kMaxLabelLength) return {};
    if (label.front() == '-' || label.back() == '-') return {};
    for (char c : label)
      if (!isAlnum(c) && c != '-') return {};
  }
  return toLower(name);
}

bool stsMxMatches(std::string_view pattern, std::string_view mx_host) {
  const std::string p = comparable(pattern);
  const std::string h = comparable(mx_host);
  if (p.empty() || h.empty()) return false;
  if (!p.starts_with("*.")) return p == h;
  const std::string_view parent = std::string_view(p).substr(2);
  if (parent.empty() || parent.find('*') != std::string_view::npos) return false;
  // Exactly one label replaces the '*': "x.<parent>" with x non-empty and dot-free.
  const size_t dot = h.find('.');
  return dot != std::string::npos && dot > 0 && std::string_view(h).substr(dot + 1) == parent;
}

bool stsMxMatchesAny(const std::vector<std::string>& patterns, std::string_view mx_host) {
  for (const auto& p : patterns)
    if (stsMxMatches(p, mx_host)) return true;
  return false;
}

// ---- §3.3 -----------------------------------------------------------------------------------

std::string stsPolicyRequest(std::string_view policy_host) {
  // §3.3: "HTTP caching MUST NOT be used", hence no-cache for any cache on the way.
  return fmt::format(
      "GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
      "Host: {}\r\n"
      "User-Agent: Postern\r\n"
      "Accept: text/plain\r\n"
      "Cache-Control: no-cache\r\n"
      "Connection: close\r\n"
      "\r\n",
      policy_host);
}

namespace {

// The next line of buf from `pos`, without its LF (and CR); npos in `next` when no LF yet.
struct Line {
  std::string_view text;
  size_t next = std::string_view::npos;
};
Line lineAt(std::string_view buf, size_t pos) {
  Line l;
  const size_t nl = buf.find('\n', pos);
  if (nl == std::string_view::npos) return l;
  l.text = buf.substr(pos, nl - pos);
  if (!l.text.empty() && l.text.back() == '\r') l.text.remove_suffix(1);
  l.next = nl + 1;
  return l;
}

StsHttpParse failed(std::string why) {
  StsHttpParse r;
  r.state = StsHttpParse::State::kError;
  r.error = std::move(why);
  return r;
}

StsHttpParse needMore(std::string_view buf, bool eof, std::string_view what) {
  if (eof) return failed(fmt::format("connection closed {}", what));
  if (buf.size() > kStsMaxHttpResponseBytes)
    return failed(fmt::format("response over {} bytes", kStsMaxHttpResponseBytes));
  return {};
}

std::string bodyTooLarge() {
  return fmt::format("policy body over {} bytes", kStsMaxPolicyBytes);
}

// The chunked body starting at `pos` (RFC 9112 §7.1), extensions and trailers skipped.
StsHttpParse dechunk(std::string_view buf, size_t pos, bool eof, StsHttpParse done) {
  std::string& body = done.response.body;
  for (;;) {
    Line size_line = lineAt(buf, pos);
    if (size_line.next == std::string_view::npos) {
      if (buf.size() - pos > kMaxChunkLineBytes) return failed("chunk size line too long");
      return needMore(buf, eof, "in a chunk size line");
    }
    if (size_line.text.size() > kMaxChunkLineBytes) return failed("chunk size line too long");
    std::string_view hex = size_line.text.substr(0, size_line.text.find(';'));
    hex = trimWsp(hex);
    if (hex.empty() || hex.size() > kMaxChunkSizeDigits) return failed("bad chunk size");
    size_t size = 0;
    for (char c : hex) {
      int d = isDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return failed("bad chunk size");
      size = size * 16 + size_t(d);
    }
    pos = size_line.next;
    if (size == 0) {
      // Trailer fields up to an empty line.
      for (;;) {
        Line t = lineAt(buf, pos);
        if (t.next == std::string_view::npos) return needMore(buf, eof, "in the chunked trailer");
        pos = t.next;
        if (t.text.empty()) return done;
      }
    }
    if (body.size() + size > kStsMaxPolicyBytes) return failed(bodyTooLarge());
    if (buf.size() - pos < size) return needMore(buf, eof, "in the middle of a chunk");
    body.append(buf.substr(pos, size));
    pos += size;
    Line end = lineAt(buf, pos);
    if (end.next == std::string_view::npos) {
      if (buf.size() - pos >= 2) return failed("chunk not followed by CRLF");
      return needMore(buf, eof, "after a chunk");
    }
    if (!end.text.empty()) return failed("chunk not followed by CRLF");
    pos = end.next;
  }
}

}  // namespace

StsHttpParse parseStsHttpResponse(std::string_view buf, bool eof) {
  size_t pos = 0;
  for (;;) {  // once per response head: 1xx interim responses are skipped
    Line status_line = lineAt(buf, pos);
    if (status_line.next == std::string_view::npos) {
      if (buf.size() - pos > kStsMaxHttpHeadBytes) return failed("response head too long");
      return needMore(buf, eof, "before the status line ended");
    }
    // "HTTP/1.x 200 OK"
    std::string_view s = status_line.text;
    if (s.size() < 12 || !s.starts_with("HTTP/1.") || !isDigit(s[7]) || s[8] != ' ' || !isDigit(s[9]) ||
        !isDigit(s[10]) || !isDigit(s[11]) || (s.size() > 12 && s[12] != ' '))
      return failed(fmt::format("not an HTTP/1.x status line: '{}'", shown(s)));
    StsHttpParse done;
    done.state = StsHttpParse::State::kDone;
    StsHttpResponse& r = done.response;
    r.status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r.status < 100) return failed(fmt::format("bad status code {}", r.status));

    std::optional<uint64_t> content_length;
    bool chunked = false;
    bool have_type = false;
    size_t p = status_line.next;
    for (;;) {
      Line h = lineAt(buf, p);
      if (h.next == std::string_view::npos) {
        if (buf.size() - pos > kStsMaxHttpHeadBytes) return failed("response head too long");
        return needMore(buf, eof, "before the response head ended");
      }
      if (h.next - pos > kStsMaxHttpHeadBytes) return failed("response head too long");
      p = h.next;
      if (h.text.empty()) break;
      if (isWsp(h.text[0])) return failed("folded header line");
      const size_t colon = h.text.find(':');
      if (colon == std::string_view::npos || colon == 0)
        return failed(fmt::format("bad header line '{}'", shown(h.text)));
      const std::string_view name = h.text.substr(0, colon);
      const std::string_view value = trimWsp(h.text.substr(colon + 1));
      if (iequals(name, "content-type")) {
        if (have_type) continue;
        have_type = true;
        r.content_type = toLower(trimWsp(value.substr(0, value.find(';'))));
      } else if (iequals(name, "content-length")) {
        auto n = parseDecimal(value, UINT64_MAX / 2);
        if (!n) return failed(fmt::format("bad Content-Length '{}'", shown(value)));
        if (content_length && *content_length != *n) return failed("conflicting Content-Length fields");
        content_length = n;
      } else if (iequals(name, "transfer-encoding")) {
        // The last coding must be chunked; anything else (gzip, ...) is not supported here.
        std::string_view last = value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1);
        if (!iequals(trimWsp(last), "chunked"))
          return failed(fmt::format("unsupported Transfer-Encoding '{}'", shown(value)));
        chunked = true;
      } else if (iequals(name, "location")) {
        r.location = std::string(value.substr(0, 256));
      }
    }
    if (r.status >= 100 && r.status < 200) {
      pos = p;
      continue;
    }
    // Only a 200 carries a policy; for anything else the head says all there is to say.
    if (r.status != 200) return done;
    if (chunked) return dechunk(buf, p, eof, std::move(done));
    const std::string_view rest = buf.substr(p);
    if (content_length) {
      if (*content_length > kStsMaxPolicyBytes) return failed(bodyTooLarge());
      if (rest.size() < *content_length) return needMore(buf, eof, "before the body ended (Content-Length)");
      r.body = std::string(rest.substr(0, *content_length));
      return done;
    }
    if (rest.size() > kStsMaxPolicyBytes) return failed(bodyTooLarge());
    if (!eof) return {};
    r.body = std::string(rest);
    return done;
  }
}

Result<std::string> checkStsHttpResponse(const StsHttpResponse& r) {
  if (r.status >= 300 && r.status < 400)
    return Status::invalid(fmt::format("HTTP {} redirect{}{} (redirects are not followed, RFC 8461 section 3.3)",
                                       r.status, r.location.empty() ? "" : " to ", shown(r.location)));
  if (r.status != 200) return Status::invalid(fmt::format("HTTP {} (only 200 carries a policy)", r.status));
  if (r.content_type.empty()) return Status::invalid("no Content-Type (text/plain is required)");
  if (r.content_type != "text/plain")
    return Status::invalid(fmt::format("Content-Type {} (text/plain is required)", shown(r.content_type)));
  return r.body;
}

}  // namespace postern::delivery
