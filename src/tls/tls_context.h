// TLS server contexts built from [tls]: secure defaults (TLS 1.2+, ECDHE+AEAD ciphers,
// no compression, no client renegotiation, session tickets), and a store that can swap
// in reloaded certificates while handshakes keep using whatever context they started with.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/status.h"

namespace postern::tls {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::shared_ptr<SSL_CTX>;

// Mozilla "intermediate" TLS 1.2 ciphers: ECDHE key exchange with AEAD only.
inline constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct CertificateInfo {
  std::string cert_path;
  std::vector<std::string> names;   // SAN DNS names (or the CN when there are none)
  std::string subject;
  std::string serial_hex;
  std::string key_type;             // "RSA", "EC", ...
  time_t not_after = 0;
  long days_left = 0;
};

// Loads and checks one cert/key pair: readable PEM, key matches certificate.
Result<CertificateInfo> inspectPair(const config::CertificatePair& pair);

// A server context with the configured certificates.
Result<SslCtxPtr> makeServerContext(const config::Tls& tls, std::vector<CertificateInfo>* infos);
// A client context (doctor, load generator): verification with system CAs or `ca_file`.
Result<SslCtxPtr> makeClientContext(const std::string& ca_file, bool verify);

class CertStore {
 public:
  explicit CertStore(config::Tls tls) : tls_(std::move(tls)) {}
  // Builds the first context; an error here refuses to start.
  Status load();
  // Rebuilds from the files; on failure the previous context keeps serving.
  Status reload();
  SslCtxPtr current() const;
  std::vector<CertificateInfo> certificates() const;
  const config::Tls& settings() const { return tls_; }

 private:
  config::Tls tls_;
  mutable std::mutex mu_;
  SslCtxPtr ctx_;
  std::vector<CertificateInfo> infos_;
};

}  // namespace postern::tls
