#include "app/control.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "app/control_request.h"
#include "log/log.h"
#include "util/strings.h"

namespace postern::app {

std::string executeControl(protect::Protector& p, std::string_view line) {
  auto req = parseControlRequest(line);
  if (!req) return fmt::format("error: {}\n", req.status().message());
  switch (req->kind) {
    case ControlRequest::Kind::kBanList: {
      std::string out = "ok\n";
      auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                     .count();
      for (const auto& b : p.list())
        out += fmt::format("{} remaining={} level={} reason={}\n", b.key,
                           formatDurationMs(uint64_t(b.until - now) * 1000), b.level, b.reason);
      return out;
    }
    case ControlRequest::Kind::kBanAdd: {
      auto key = p.keyFromText(req->target);
      if (!key) return fmt::format("error: not an address: {}\n", req->target);
      auto b = p.ban(*key, static_cast<int64_t>(req->seconds), req->reason);
      return fmt::format("ok\nbanned {} for {}\n", b.key, formatDurationMs(req->seconds * 1000));
    }
    case ControlRequest::Kind::kBanDel: {
      auto key = p.keyFromText(req->target);
      if (!key) return fmt::format("error: not an address: {}\n", req->target);
      if (!p.unban(*key, "postern ban del")) return fmt::format("error: {} is not banned\n", *key);
      return fmt::format("ok\nunbanned {}\n", *key);
    }
  }
  return "error: unknown request\n";
}

Status ControlServer::start() {
  ::unlink(path_.c_str());
  std::error_code ec;
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  acceptor_->open(asio::local::stream_protocol(), ec);
  mode_t old = ::umask(0177);   // the socket is for the operator only
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(path_), ec);
  ::umask(old);
  if (!ec) acceptor_->listen(kControlBacklog, ec);
  if (ec) return Status::io(fmt::format("control socket {}: {}", path_, ec.message()));
  asio::co_spawn(io_, acceptLoop(), asio::detached);
  return Status::ok();
}

void ControlServer::stop() {
  std::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  ::unlink(path_.c_str());
}

net::awaitable<void> ControlServer::acceptLoop() {
  for (;;) {
    auto [ec, s] = co_await acceptor_->async_accept(net::use_nothrow);
    if (ec) co_return;
    asio::co_spawn(io_, serveOne(std::move(s)), asio::detached);
  }
}

net::awaitable<void> ControlServer::serveOne(asio::local::stream_protocol::socket s) {
  std::string req;
  char buf[512];
  asio::steady_timer guard(io_, kControlRequestTimeout);
  guard.async_wait([&s](std::error_code ec) {
    if (!ec) s.close();
  });
  while (req.find('\n') == std::string::npos && req.size() < kMaxControlRequest) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), net::use_nothrow);
    if (ec) break;
    req.append(buf, n);
  }
  guard.cancel();
  if (req.empty()) co_return;
  std::string reply = executeControl(p_, req.substr(0, req.find('\n')));
  co_await asio::async_write(s, asio::buffer(reply), net::use_nothrow);
}

std::optional<std::string> controlRequest(const std::string& path, const std::string& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string line = request + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace postern::app
