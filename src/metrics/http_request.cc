// HTTP/1.1 request head: RFC 9112 sections 2.1-2.3 (message format, line endings, version),
// 3 (request line), 3.2 (request target forms and Host), 5 (field lines); tokens and field
// values from RFC 9110 section 5.6.2 and 5.5.
#include "metrics/http_request.h"

namespace postern::metrics {

namespace {

// RFC 9110 section 5.6.2: tchar.
bool isTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!isTchar(c)) return false;
  return true;
}

// RFC 9110 section 5.5: field-value characters are VCHAR, obs-text, SP and HTAB.
bool isFieldValueChar(unsigned char c) {
  return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = x - 'A' + 'a';
    if (y >= 'A' && y <= 'Z') y = y - 'A' + 'a';
    if (x != y) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseResult fail(int status, std::string_view reason) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error_status = status;
  r.reason = reason;
  return r;
}

// Section 3.2: origin-form ("/path?query"), absolute-form ("http://host/path"), and the
// asterisk-form ("*", only meaningful for OPTIONS). The authority-form belongs to CONNECT,
// which is refused as a method anyway. Empty view: not a valid target.
std::string_view targetPath(std::string_view target) {
  if (target == "*") return target;
  std::string_view rest = target;
  if (target.front() != '/') {
    size_t colon = target.find("://");
    if (colon == target.npos) return {};
    std::string_view scheme = target.substr(0, colon);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return {};
    rest = target.substr(colon + 3);
    size_t slash = rest.find_first_of("/?#");
    if (slash == rest.npos || rest[slash] != '/') return "/";
    rest = rest.substr(slash);
  }
  size_t end = rest.find_first_of("?#");
  return rest.substr(0, end);
}

}  // namespace

ParseResult parseRequest(std::string_view in) {
  // Section 2.2: CRLF ends each line. A bare CR is invalid; a bare LF could be accepted
  // (a MAY), but no scraper sends one, and refusing it keeps one reading of the bytes.
  // Section 2.2 also says a server SHOULD ignore at least one empty line before the request
  // line (left over from a previous message).
  size_t start = 0;
  while (in.size() - start >= 2 && in[start] == '\r' && in[start + 1] == '\n') start += 2;
  // The method is checked as soon as it arrives, so that a client speaking something else
  // (a TLS ClientHello, a PROXY header where none is expected) is answered at once.
  for (size_t i = start; i < in.size() && in[i] != ' '; ++i)
    if (!isTchar(static_cast<unsigned char>(in[i]))) {
      if (in[i] == '\r') break;  // line ends are checked below
      return fail(400, "malformed method");
    }
  size_t limit = in.size() < kMaxRequestHead ? in.size() : kMaxRequestHead;
  size_t head_end = in.npos;  // index just past the empty line
  for (size_t i = start; i < limit; ++i) {
    unsigned char c = in[i];
    if (c == '\n') return fail(400, "bare LF in request head (lines end with CRLF, RFC 9112 section 2.2)");
    if (c == '\r') {
      if (i + 1 >= in.size()) break;  // need the next byte
      if (in[i + 1] != '\n') return fail(400, "bare CR in request head (RFC 9112 section 2.2)");
      if (i + 3 < in.size() && in[i + 2] == '\r' && in[i + 3] == '\n' && i + 4 <= kMaxRequestHead) {
        head_end = i + 4;
        break;
      }
      ++i;  // skip the LF
    }
  }
  if (head_end == in.npos) {
    if (in.size() >= kMaxRequestHead) return fail(431, "request head larger than 8192 bytes");
    return ParseResult{};  // kNeedMore
  }

  std::string_view head = in.substr(start, head_end - start - 2);  // each line ends with CRLF
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  std::string_view fields = head.substr(eol + 2);

  // Section 3: request-line = method SP request-target SP HTTP-version, single spaces.
  ParseResult r;
  size_t sp1 = line.find(' ');
  if (sp1 == line.npos) return fail(400, "malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == line.npos || line.find(' ', sp2 + 1) != line.npos) return fail(400, "malformed request line");
  r.request.method = line.substr(0, sp1);
  r.request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!isToken(r.request.method)) return fail(400, "malformed method");
  if (r.request.target.empty()) return fail(400, "empty request target");
  for (unsigned char c : r.request.target)
    if (c <= 0x20 || c >= 0x7f) return fail(400, "invalid character in request target");
  // Section 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1') return fail(505, "only HTTP/1.x is supported");
  r.request.minor_version = version[7] - '0';
  r.request.path = targetPath(r.request.target);
  if (r.request.path.empty()) return fail(400, "unsupported request target form");

  // Section 5: field-line = field-name ":" OWS field-value OWS.
  int hosts = 0;
  while (!fields.empty()) {
    size_t e = fields.find("\r\n");
    std::string_view f = fields.substr(0, e);
    fields.remove_prefix(e + 2);
    // Section 5.2: obsolete line folding may be refused with 400.
    if (f.front() == ' ' || f.front() == '\t') return fail(400, "obsolete line folding in header fields");
    size_t colon = f.find(':');
    if (colon == f.npos) return fail(400, "header field without a colon");
    // Section 5.1: no whitespace between the field name and the colon; MUST be refused.
    std::string_view name = f.substr(0, colon);
    if (!isToken(name)) return fail(400, "malformed header field name");
    std::string_view value = f.substr(colon + 1);
    for (unsigned char c : value)
      if (!isFieldValueChar(c)) return fail(400, "invalid character in header field value");
    if (iequals(name, "host")) {
      ++hosts;
      r.request.host = trimOws(value);
    }
  }
  // Section 3.2: HTTP/1.1 needs exactly one Host field; more than one is refused whatever
  // the version.
  if (hosts > 1) return fail(400, "more than one Host header field");
  if (hosts == 0 && r.request.minor_version >= 1) return fail(400, "HTTP/1.1 request without a Host header field");
  r.status = ParseStatus::kDone;
  r.consumed = head_end;
  return r;
}

}  // namespace postern::metrics
