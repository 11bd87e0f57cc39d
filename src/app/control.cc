#include "app/control.h"

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/control_request.h"
#include "log/log.h"
#include "util/strings.h"
#include "util/time_text.h"

#include "queue/queue.h"
#include "spool/spool.h"

namespace postern::app {

namespace {


std::string_view statusName(spool::RcptStatus s) {
  switch (s) {
    case spool::RcptStatus::kPending: return "pending";
    case spool::RcptStatus::kDelivered: return "delivered";
    case spool::RcptStatus::kFailed: return "failed";
    case spool::RcptStatus::kDeleted: return "deleted";
  }
  return "?";
}

// One message: a summary line, then a line per recipient (all of them with `detailed`,
// else only those still pending).
std::string formatMessage(const spool::Pending& p, bool detailed) {
  std::string out = fmt::format("{} arrived={} size={} from=<{}>{}\n", p.env.queue_id, isoUtc(p.env.accepted_us),
                                p.env.size, p.env.mail_from, (p.env.flags & spool::kBounce) ? " notification" : "");
  uint64_t now = nowUnixUs();
  for (size_t i = 0; i < p.state.size() && i < p.env.recipients.size(); ++i) {
    const auto& st = p.state[i];
    if (!detailed && st.status != spool::RcptStatus::kPending) continue;
    const auto& r = p.env.recipients[i];
    out += fmt::format("  to=<{}> {} {} attempts={}", r.mailbox, r.local ? "local" : "remote", statusName(st.status),
                       st.attempts);
    if (st.status == spool::RcptStatus::kPending)
      out += st.next_attempt_us <= now ? " next=now" : fmt::format(" next={}", isoUtc(st.next_attempt_us));
    if (!st.last_error.empty()) out += fmt::format(" last_error=\"{}\"", st.last_error);
    if (detailed && r.address != r.mailbox) out += fmt::format(" rcpt=<{}>", r.address);
    if (st.warned) out += " warned";   // a delay warning was sent
    out += "\n";
  }
  return out;
}

std::string reply(const Status& s, std::string_view done) {
  if (!s) return fmt::format("error: {}\n", s.message());
  return fmt::format("ok\n{}\n", done);
}

std::string executeQueue(const ControlTargets& t, const ControlRequest& req) {
  using Kind = ControlRequest::Kind;
  if (!t.spool) return "error: the queue is not available\n";
  const std::string& id = req.target;
  switch (req.kind) {
    case Kind::kQueueList: {
      auto all = t.spool->list();
      std::string out = "ok\n";
      for (const auto& p : all) out += formatMessage(p, false);
      out += fmt::format("{} message{} in the queue\n", all.size(), all.size() == 1 ? "" : "s");
      return out;
    }
    case Kind::kQueueShow: {
      auto p = t.spool->find(id);
      if (!p) return fmt::format("error: no message {} in the queue\n", id);
      return "ok\n" + formatMessage(*p, true);
    }
    case Kind::kQueueRetryAll: {
      if (!t.queue) return "error: 'queue retry' needs the running server\n";
      size_t n = t.queue->retryAll();
      return fmt::format("ok\n{} message{} scheduled now\n", n, n == 1 ? "" : "s");
    }
    case Kind::kQueueRetry:
      if (!t.queue) return "error: 'queue retry' needs the running server\n";
      return reply(t.queue->retry(id), fmt::format("{} scheduled now", id));
    case Kind::kQueueBounce:
      if (!t.queue) return "error: 'queue bounce' needs the running server (it writes the notification)\n";
      return reply(t.queue->bounce(id), fmt::format("{} returned to its sender", id));
    case Kind::kQueueDelete: {
      if (t.queue) return reply(t.queue->remove(id), fmt::format("{} deleted", id));
      auto p = t.spool->find(id);
      if (!p) return fmt::format("error: no message {} in the queue\n", id);
      t.spool->updateState(id, spool::changePending(*p, [](spool::RcptState& st) {
        st.status = spool::RcptStatus::kDeleted;
        st.last_error = "deleted by the operator";
      }));
      t.spool->drain();
      return fmt::format("ok\n{} deleted\n", id);
    }
    default: break;
  }
  return "error: unknown request\n";
}

}  // namespace

std::string executeControl(const ControlTargets& t, std::string_view line) {
  auto req = parseControlRequest(line);
  if (!req) return fmt::format("error: {}\n", req.status().message());
  if (req->kind >= ControlRequest::Kind::kQueueList) return executeQueue(t, *req);
  if (!t.protector) return "error: bans are not available\n";
  protect::Protector& p = *t.protector;
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
    default: break;
  }
  return "error: unknown request\n";
}

Status ControlServer::start() {
  ::unlink(path_.c_str());
  std::error_code ec;
  acceptor_ = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  acceptor_->open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor_->bind(asio::local::stream_protocol::endpoint(path_), ec);
  // The socket is for the operator only. Set after bind (the umask is the whole process's,
  // and threads run): until then the state folder's own mode (0700) keeps others out.
  if (!ec && ::chmod(path_.c_str(), 0600) != 0) ec = std::error_code(errno, std::system_category());
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
  // Queue requests read and write the spool (blocking): run them off the event loop.
  std::string line = req.substr(0, req.find('\n'));
  std::string answer;
  if (line.rfind("queue", 0) == 0 && pool_) {
    co_await asio::post(asio::bind_executor(*pool_, asio::use_awaitable));
    answer = executeControl(t_, line);
    co_await asio::post(asio::bind_executor(io_, asio::use_awaitable));
  } else {
    answer = executeControl(t_, line);
  }
  co_await asio::async_write(s, asio::buffer(answer), net::use_nothrow);
}

Result<std::optional<std::string>> controlRequest(const std::string& path, const std::string& request) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::invalid(fmt::format("control socket path {} is too long for a Unix socket", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::fromErrno(errno, fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) return std::optional<std::string>();  // no server running
    if (err == EACCES || err == EPERM)
      return Status::fromErrno(err, fmt::format("cannot reach the control socket {}: {} (run as the user the "
                                                "server runs as, or as root)",
                                                path, std::strerror(err)));
    return Status::fromErrno(err, fmt::format("cannot connect to the control socket {}: {}", path, std::strerror(err)));
  }
  std::string line = request + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    const int err = errno;
    ::close(fd);
    return Status::fromErrno(err, fmt::format("cannot write to the control socket {}: {}", path, std::strerror(err)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

}  // namespace postern::app
