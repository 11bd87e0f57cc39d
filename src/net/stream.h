// A connection's byte stream: plain TCP, upgradable to TLS in place (STARTTLS) or TLS
// from the first byte. TLS runs OpenSSL directly on the socket through a small BIO that
// first serves bytes already read (e.g. what followed a PROXY header in the same segment),
// so no byte a client sent is lost between layers, and idle connections hold no TLS
// buffers (SSL_MODE_RELEASE_BUFFERS).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "net/asio.h"

namespace postern::net {

struct TlsInfo {
  std::string version;   // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  std::string sni;       // server name the client asked for
};

class Stream {
 public:
  explicit Stream(tcp::socket socket);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Reads at least one byte (plaintext). Returns 0 bytes with an error at EOF/failure.
  awaitable<std::pair<std::error_code, size_t>> readSome(char* buf, size_t n);
  awaitable<std::error_code> writeAll(std::string_view data);

  // Server side handshake. `prefix`: bytes already read from the socket that belong to
  // the TLS stream (moved from). On failure `reason` holds OpenSSL's reason ("no shared cipher", ...).
  awaitable<bool> acceptTls(SSL_CTX* ctx, std::string& prefix, std::string& reason);
  // Client side (doctor, load generator, outbound SMTP). `sni` may be empty. `prepare`, when
  // set, runs on the new SSL before the handshake (e.g. DANE, SSL_dane_enable); false from it
  // fails the handshake with its `reason`.
  using TlsPrepare = std::function<bool(SSL* ssl, std::string& reason)>;
  awaitable<bool> connectTls(SSL_CTX* ctx, const std::string& sni, std::string& reason, TlsPrepare prepare = nullptr);

  bool isTls() const { return ssl_ != nullptr && handshake_done_; }
  const TlsInfo& tlsInfo() const { return tls_info_; }
  SSL* ssl() const { return ssl_; }

  // Deadline: a watchdog (see runWatchdog) cancels pending I/O once it passes.
  void setDeadline(std::chrono::steady_clock::duration from_now);
  void setDeadlineAt(std::chrono::steady_clock::time_point at);
  bool expired() const { return expired_; }
  // Runs until stop(); cancels I/O when the deadline passes, closes the socket if the
  // stream stays stuck for `grace` after that.
  awaitable<void> runWatchdog(std::chrono::steady_clock::duration grace);
  void stopWatchdog();

  void close();
  tcp::socket& socket() { return socket_; }

  // Bytes served to OpenSSL before the socket (used by the BIO).
  std::string& tlsPrefix() { return tls_prefix_; }

 private:
  awaitable<bool> handshake(bool server, std::string& reason);
  awaitable<std::error_code> waitFor(int ssl_error);

  tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool handshake_done_ = false;
  TlsInfo tls_info_;
  std::string tls_prefix_;
  size_t tls_prefix_pos_ = 0;
  asio::steady_timer watchdog_;
  std::chrono::steady_clock::time_point deadline_;
  bool expired_ = false;
  bool watchdog_stopped_ = false;
  friend struct StreamBio;
};

// OpenSSL's reason for the last failure on this thread, e.g. "no shared cipher".
std::string lastTlsError();

}  // namespace postern::net
