// The metrics listener's HTTP request-head parser (RFC 9112 sections 2-5) and its routing:
// valid requests of each form, then every error path, then the responses.
#include "metrics/http_request.h"

#include <gtest/gtest.h>

#include <string>

#include "metrics/http_server.h"

namespace postern::metrics {
namespace {

struct Good {
  const char* name;
  std::string input;
  std::string_view method, path, host;
  int minor;
};

TEST(HttpRequest, ValidHeads) {
  const Good cases[] = {
      {"curl", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9465\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", "GET",
       "/metrics", "127.0.0.1:9465", 1},
      {"head", "HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "/readyz", "x", 1},
      {"http/1.0 without host", "GET /healthz HTTP/1.0\r\n\r\n", "GET", "/healthz", "", 0},
      {"query stripped", "GET /metrics?name[]=up HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/metrics", "a", 1},
      {"absolute form", "GET http://127.0.0.1:9465/readyz?x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "GET", "/readyz",
       "127.0.0.1", 1},
      {"absolute form without path", "GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/", "h", 1},
      {"leading empty line ignored", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/", "h", 1},
      {"ows around host", "GET / HTTP/1.1\r\nhOsT:\t h \r\n\r\n", "GET", "/", "h", 1},
      {"empty field value", "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n", "GET", "/", "h", 1},
      {"other method parses", "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", "POST", "/metrics",
       "h", 1},
      {"obs-text in value", "GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n", "GET", "/", "h", 1},
  };
  for (const auto& c : cases) {
    ParseResult r = parseRequest(c.input);
    ASSERT_EQ(r.status, ParseStatus::kDone) << c.name << ": " << r.reason;
    EXPECT_EQ(r.request.method, c.method) << c.name;
    EXPECT_EQ(r.request.path, c.path) << c.name;
    EXPECT_EQ(r.request.host, c.host) << c.name;
    EXPECT_EQ(r.request.minor_version, c.minor) << c.name;
    EXPECT_EQ(c.input.substr(r.consumed).find("\r\n\r\n"), std::string::npos) << c.name;
    EXPECT_EQ(c.input.substr(0, r.consumed).substr(r.consumed - 4), "\r\n\r\n") << c.name;
  }
}

TEST(HttpRequest, EveryPrefixNeedsMore) {
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) {
    ParseResult r = parseRequest(std::string_view(req).substr(0, n));
    EXPECT_EQ(r.status, ParseStatus::kNeedMore) << n;
  }
  EXPECT_EQ(parseRequest(req).status, ParseStatus::kDone);
}

struct Bad {
  const char* name;
  std::string input;
  int status;
};

TEST(HttpRequest, Errors) {
  const Bad cases[] = {
      {"bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", 400},
      {"bare CR", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"no version", "GET /\r\n\r\n", 400},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"version digits", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
      {"http/2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"http/0.9 style", "GET / HTTP/0.9\r\n\r\n", 505},
      {"bad method char", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"control in target", std::string("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
      {"relative target", "GET metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"ftp absolute", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"missing host 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"two hosts 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
      {"empty name", "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: h") + '\0' + "x\r\n\r\n", 400},
      {"DEL in value", "GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", 400},
      {"too large", "GET /" + std::string(kMaxRequestHead, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431},
      {"too large, no line end", std::string(kMaxRequestHead, 'G'), 431},
      {"endless empty lines", std::string(kMaxRequestHead, '\n'), 400},
      {"TLS ClientHello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
  };
  for (const auto& c : cases) {
    ParseResult r = parseRequest(c.input);
    ASSERT_EQ(r.status, ParseStatus::kError) << c.name;
    EXPECT_EQ(r.error_status, c.status) << c.name << ": " << r.reason;
    EXPECT_FALSE(r.reason.empty()) << c.name;
    EXPECT_EQ(r.consumed, 0u) << c.name;
  }
}

TEST(HttpRequest, HeadExactlyAtTheLimitIsAccepted) {
  std::string base = "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n";
  std::string req = base;
  req.insert(req.size() - 4, kMaxRequestHead - base.size(), 'v');
  ASSERT_EQ(req.size(), kMaxRequestHead);
  EXPECT_EQ(parseRequest(req).status, ParseStatus::kDone);
  req.insert(req.size() - 4, "v");
  EXPECT_EQ(parseRequest(req).error_status, 431);
}

HttpResponse routeOf(std::string_view req, bool ready = true) {
  Endpoints e{[] { return std::string("m 1\n"); }, [ready] { return ready; }};
  return route(parseRequest(req), e);
}

TEST(HttpRoute, Endpoints) {
  EXPECT_EQ(routeOf("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n").status, 200);
  EXPECT_EQ(routeOf("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n").body, "m 1\n");
  EXPECT_EQ(routeOf("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n").content_type, kPrometheusContentType);
  EXPECT_EQ(routeOf("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n").body, "ok\n");
  EXPECT_EQ(routeOf("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", false).status, 200);
  EXPECT_EQ(routeOf("GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n").status, 200);
  EXPECT_EQ(routeOf("GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n", false).status, 503);
  EXPECT_EQ(routeOf("HEAD /readyz HTTP/1.1\r\nHost: h\r\n\r\n", false).status, 503);
  EXPECT_EQ(routeOf("GET / HTTP/1.1\r\nHost: h\r\n\r\n").status, 404);
  EXPECT_EQ(routeOf("GET /metrics/ HTTP/1.1\r\nHost: h\r\n\r\n").status, 404);
  EXPECT_EQ(routeOf("GET * HTTP/1.1\r\nHost: h\r\n\r\n").status, 404);
  HttpResponse post = routeOf("POST /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_TRUE(post.allow_header);
  EXPECT_EQ(routeOf("get /metrics HTTP/1.1\r\nHost: h\r\n\r\n").status, 405);  // methods are case-sensitive
  EXPECT_EQ(routeOf("GET / HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(route(ParseResult{}, Endpoints{}).status, 408);  // timed out with a partial head
}

TEST(HttpRoute, Serialize) {
  HttpResponse r;
  r.body = "ok\n";
  EXPECT_EQ(serialize(r, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\nok\n");
  EXPECT_EQ(serialize(r, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
  r.status = 405;
  r.allow_header = true;
  EXPECT_NE(serialize(r, false).find("HTTP/1.1 405 Method Not Allowed\r\n"), std::string::npos);
  EXPECT_NE(serialize(r, false).find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
}

}  // namespace
}  // namespace postern::metrics
