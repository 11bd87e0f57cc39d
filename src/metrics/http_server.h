// The metrics listener's HTTP side: one request per connection (RFC 9112 section 9.6,
// Connection: close), GET and HEAD only, three paths:
//   /metrics  the registry in Prometheus text format 0.0.4
//   /healthz  200 "ok" while the process serves
//   /readyz   200 "ready" once started, 503 "stopping" from SIGTERM until the process ends
// Anything else: 404 (other paths), 405 with Allow (other methods), 400 (malformed), 431
// (head too large), 505 (not HTTP/1.x), 408 (nothing complete before the read timeout).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "metrics/http_request.h"
#include "net/asio.h"
#include "net/stream.h"

namespace postern::metrics {

// The whole request head must arrive within this time.
inline constexpr std::chrono::seconds kHttpReadTimeout{10};
inline constexpr std::chrono::seconds kHttpWriteTimeout{10};
// After the response: how long, and how many bytes, to read and drop while the client closes.
inline constexpr std::chrono::seconds kHttpLingerTimeout{2};
inline constexpr size_t kHttpLingerBytes = 64 * 1024;

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool allow_header = false;  // 405: "Allow: GET, HEAD"
};

// What the endpoints read. Called on the connection's thread.
struct Endpoints {
  std::function<std::string()> metrics;  // the exposition text
  std::function<bool()> ready;           // /readyz
};

// Pure: the response to a parsed request (or to a parse error).
HttpResponse route(const ParseResult& parsed, const Endpoints& endpoints);
// Status line, fields (Content-Type, Content-Length, Connection: close) and, unless the
// request was HEAD, the body (RFC 9110 section 9.3.2: HEAD gets the same fields, no content).
std::string serialize(const HttpResponse& r, bool head);
std::string_view statusText(int status);

// Reads one request from `stream` (`prefix`: bytes already read, e.g. after a PROXY
// header), answers it and returns; the caller closes the connection.
net::awaitable<void> serveHttp(net::Stream& stream, std::string prefix, const Endpoints& endpoints);

}  // namespace postern::metrics
