// The head of an HTTP/1.1 request (RFC 9112 section 2.1: start-line, field lines, empty
// line), as a pure parser for the metrics listener. Only what a scraper or health checker
// sends is needed: the method, the target's path, the version and the Host field. The body,
// if any, is never read: the server answers one request and closes (Connection: close).
//
// It never touches a socket: the caller reads bytes, calls parseRequest() on everything
// received so far, and acts on need-more / done / error. It looks only at the bytes in
// [input.data(), input.data() + input.size()), and allocates nothing: the views in Request
// point into `input`.
#pragma once

#include <cstddef>
#include <string_view>

namespace postern::metrics {

// The whole head (request line and fields) must fit in this many bytes; beyond it the
// answer is 431 (RFC 6585 section 5). Scrapers send a few hundred bytes.
inline constexpr size_t kMaxRequestHead = 8192;

enum class ParseStatus : unsigned char { kNeedMore, kDone, kError };

struct Request {
  std::string_view method;  // case-sensitive token (RFC 9110 section 9.1)
  std::string_view target;  // as sent
  std::string_view path;    // the target's path: no query, no scheme and authority
  int minor_version = 1;    // HTTP/1.<minor_version>
  std::string_view host;    // the Host field's value (empty when absent)
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;      // kDone: the length of the head, the empty line included
  Request request;          // meaningful with kDone
  int error_status = 0;     // kError: 400, 431 or 505
  std::string_view reason;  // kError: a static, human-readable reason
};

ParseResult parseRequest(std::string_view input);

}  // namespace postern::metrics
