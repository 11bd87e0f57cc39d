// HTTP/1.1 semantics used here: RFC 9110 sections 9.3.1 (GET), 9.3.2 (HEAD), 15.5.6 (405
// with Allow), 15.6.6 (505); RFC 9112 section 9.6 (Connection: close and tear-down);
// RFC 6585 section 5 (431).
#include "metrics/http_server.h"

#include <fmt/format.h>

namespace postern::metrics {

std::string_view statusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

HttpResponse route(const ParseResult& parsed, const Endpoints& endpoints) {
  HttpResponse r;
  if (parsed.status != ParseStatus::kDone) {
    r.status = parsed.status == ParseStatus::kError ? parsed.error_status : 408;
    r.body = parsed.status == ParseStatus::kError ? std::string(parsed.reason) + "\n" : "request timeout\n";
    return r;
  }
  const Request& q = parsed.request;
  bool known = q.path == "/metrics" || q.path == "/healthz" || q.path == "/readyz";
  if (!known) {
    r.status = 404;
    r.body = "not found; try /metrics, /healthz or /readyz\n";
    return r;
  }
  if (q.method != "GET" && q.method != "HEAD") {
    r.status = 405;
    r.allow_header = true;
    r.body = "method not allowed\n";
    return r;
  }
  if (q.path == "/metrics") {
    r.content_type = std::string(kPrometheusContentType);
    r.body = endpoints.metrics ? endpoints.metrics() : std::string();
  } else if (q.path == "/healthz") {
    r.body = "ok\n";
  } else {
    bool ready = endpoints.ready && endpoints.ready();
    r.status = ready ? 200 : 503;
    r.body = ready ? "ready\n" : "stopping\n";
  }
  return r;
}

std::string serialize(const HttpResponse& r, bool head) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n", r.status,
                                statusText(r.status), r.content_type, r.body.size());
  if (r.allow_header) out += "Allow: GET, HEAD\r\n";
  out += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head) out += r.body;
  return out;
}

net::awaitable<void> serveHttp(net::Stream& stream, std::string in, const Endpoints& endpoints) {
  stream.setDeadline(kHttpReadTimeout);
  ParseResult parsed = parseRequest(in);
  while (parsed.status == ParseStatus::kNeedMore) {
    char buf[2048];
    auto [ec, n] = co_await stream.readSome(buf, sizeof buf);
    if (ec) {
      if (!stream.expired()) co_return;  // the client went away: nobody to answer
      break;                             // 408
    }
    in.append(buf, n);
    parsed = parseRequest(in);
  }
  bool head = parsed.status == ParseStatus::kDone && parsed.request.method == "HEAD";
  std::string reply = serialize(route(parsed, endpoints), head);
  stream.setDeadline(kHttpWriteTimeout);
  co_await stream.writeAll(reply);
  // RFC 9112 section 9.6: close the sending side first and keep reading (and dropping) until
  // the client closes, so that unread request bytes do not turn the close into a reset that
  // destroys the response before the client has read it.
  std::error_code ignored;
  stream.socket().shutdown(net::tcp::socket::shutdown_send, ignored);
  stream.setDeadline(kHttpLingerTimeout);
  size_t drained = 0;
  while (drained < kHttpLingerBytes) {
    char buf[2048];
    auto [ec, n] = co_await stream.readSome(buf, sizeof buf);
    if (ec) break;
    drained += n;
  }
}

}  // namespace postern::metrics
