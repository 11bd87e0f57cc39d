#include "net/stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace postern::net {

// The BIO: reads serve the pending prefix first, then the socket; both directions are
// non-blocking and report "retry" so the coroutine can wait for readiness with asio.
struct StreamBio {
  static int write(BIO* b, const char* data, size_t len, size_t* written) {
    auto* s = static_cast<Stream*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    ssize_t n = ::send(s->socket_.native_handle(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
      return 0;
    }
    *written = static_cast<size_t>(n);
    return 1;
  }
  static int read(BIO* b, char* data, size_t len, size_t* readbytes) {
    auto* s = static_cast<Stream*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (s->tls_prefix_pos_ < s->tls_prefix_.size()) {
      size_t n = std::min(len, s->tls_prefix_.size() - s->tls_prefix_pos_);
      std::memcpy(data, s->tls_prefix_.data() + s->tls_prefix_pos_, n);
      s->tls_prefix_pos_ += n;
      if (s->tls_prefix_pos_ == s->tls_prefix_.size()) {
        std::string().swap(s->tls_prefix_);
        s->tls_prefix_pos_ = 0;
      }
      *readbytes = n;
      return 1;
    }
    ssize_t n = ::recv(s->socket_.native_handle(), data, len, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
      return 0;
    }
    if (n == 0) return 0;  // EOF: no retry flag
    *readbytes = static_cast<size_t>(n);
    return 1;
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;
      case BIO_CTRL_PUSH:
      case BIO_CTRL_POP: return 0;
      default: return 0;
    }
  }
  static BIO_METHOD* method() {
    // Created once per process; BIO_METHOD is immutable after setup and shared by threads.
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "postern-stream");
      BIO_meth_set_write_ex(bm, &StreamBio::write);
      BIO_meth_set_read_ex(bm, &StreamBio::read);
      BIO_meth_set_ctrl(bm, &StreamBio::ctrl);
      return bm;
    }();
    return m;
  }
};

std::string lastTlsError() {
  unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e) {
    const char* r = ERR_reason_error_string(e);
    out = r ? r : "unknown TLS error";
  }
  ERR_clear_error();
  return out;
}

Stream::Stream(tcp::socket socket) : socket_(std::move(socket)), watchdog_(socket_.get_executor()) {
  std::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(tcp::no_delay(true), ec);
  deadline_ = std::chrono::steady_clock::time_point::max();
}

Stream::~Stream() {
  if (ssl_) SSL_free(ssl_);
}

void Stream::close() {
  std::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

void Stream::setDeadline(std::chrono::steady_clock::duration from_now) {
  deadline_ = std::chrono::steady_clock::now() + from_now;
  expired_ = false;
}

void Stream::setDeadlineAt(std::chrono::steady_clock::time_point at) {
  deadline_ = at;
  expired_ = false;
}

void Stream::stopWatchdog() {
  watchdog_stopped_ = true;
  watchdog_.cancel();
}

awaitable<void> Stream::runWatchdog(std::chrono::steady_clock::duration grace) {
  bool fired_once = false;
  while (!watchdog_stopped_) {
    watchdog_.expires_at(deadline_);
    auto [ec] = co_await watchdog_.async_wait(use_nothrow);
    if (watchdog_stopped_) co_return;
    if (ec && ec != asio::error::operation_aborted) co_return;
    if (std::chrono::steady_clock::now() < deadline_) continue;  // deadline moved meanwhile
    if (fired_once && expired_) {
      close();  // the session did not wind down within the grace period
      co_return;
    }
    expired_ = true;
    fired_once = true;
    std::error_code ignored;
    socket_.cancel(ignored);
    deadline_ = std::chrono::steady_clock::now() + grace;
  }
}

awaitable<std::error_code> Stream::waitFor(int ssl_error) {
  auto [ec] = co_await socket_.async_wait(ssl_error == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write
                                                                             : tcp::socket::wait_read,
                                          use_nothrow);
  if (!ec && expired_) ec = asio::error::timed_out;
  co_return ec;
}

awaitable<std::pair<std::error_code, size_t>> Stream::readSome(char* buf, size_t n) {
  if (!ssl_) {
    auto [ec, got] = co_await socket_.async_read_some(asio::buffer(buf, n), use_nothrow);
    if (expired_ && ec) ec = asio::error::timed_out;
    co_return std::pair{ec, got};
  }
  for (;;) {
    ERR_clear_error();
    size_t got = 0;
    int r = SSL_read_ex(ssl_, buf, n, &got);
    if (r == 1) co_return std::pair{std::error_code(), got};
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (auto ec = co_await waitFor(err)) co_return std::pair{ec, size_t{0}};
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN) co_return std::pair{std::error_code(asio::error::eof), size_t{0}};
    ERR_clear_error();
    co_return std::pair{std::error_code(asio::error::connection_reset), size_t{0}};
  }
}

awaitable<std::error_code> Stream::writeAll(std::string_view data) {
  if (!ssl_) {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), use_nothrow);
    if (expired_ && ec) ec = asio::error::timed_out;
    co_return ec;
  }
  while (!data.empty()) {
    ERR_clear_error();
    size_t written = 0;
    int r = SSL_write_ex(ssl_, data.data(), data.size(), &written);
    if (r == 1) {
      data.remove_prefix(written);
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (auto ec = co_await waitFor(err)) co_return ec;
      continue;
    }
    ERR_clear_error();
    co_return std::error_code(asio::error::connection_reset);
  }
  co_return std::error_code();
}

awaitable<bool> Stream::handshake(bool server, std::string& reason) {
  for (;;) {
    ERR_clear_error();
    int r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (r == 1) break;
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (auto ec = co_await waitFor(err)) {
        reason = ec == asio::error::timed_out ? "handshake timed out" : ec.message();
        co_return false;
      }
      continue;
    }
    reason = lastTlsError();
    if (reason.empty()) {
      reason = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ? "the peer closed the connection during the handshake"
                                                                          : "handshake failed";
    }
    co_return false;
  }
  handshake_done_ = true;
  tls_info_.version = SSL_get_version(ssl_);
  tls_info_.cipher = SSL_get_cipher_name(ssl_);
  if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) tls_info_.sni = sni;
  co_return true;
}

awaitable<bool> Stream::acceptTls(SSL_CTX* ctx, std::string& prefix, std::string& reason) {
  ssl_ = SSL_new(ctx);
  if (!ssl_) {
    reason = lastTlsError();
    co_return false;
  }
  tls_prefix_ = std::move(prefix);
  tls_prefix_pos_ = 0;
  BIO* bio = BIO_new(StreamBio::method());
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
  co_return co_await handshake(true, reason);
}

awaitable<bool> Stream::connectTls(SSL_CTX* ctx, const std::string& sni, std::string& reason, TlsPrepare prepare) {
  ssl_ = SSL_new(ctx);
  if (!ssl_) {
    reason = lastTlsError();
    co_return false;
  }
  BIO* bio = BIO_new(StreamBio::method());
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (!sni.empty()) {
    SSL_set_tlsext_host_name(ssl_, sni.c_str());
    SSL_set1_host(ssl_, sni.c_str());
  }
  if (prepare && !prepare(ssl_, reason)) co_return false;
  co_return co_await handshake(false, reason);
}

}  // namespace postern::net
