// TLS server contexts built from [tls]: secure defaults (TLS 1.2+, ECDHE+AEAD ciphers,
// no compression, no client renegotiation, session tickets), and a store that can swap
// in reloaded certificates while handshakes keep using whatever context they started with.
#pragma once

#include <openssl/ssl.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/file_source.h"
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

inline constexpr const char* kGroups = "X25519:P-256:P-384:X448:P-521";

struct CertificateInfo {
  std::string cert_path;
  std::vector<std::string> names;   // SAN DNS names (or the CN when there are none)
  std::string subject;
  std::string issuer;
  std::string serial_hex;
  std::string key_type;             // "RSA", "EC", ...
  time_t not_after = 0;
  long days_left = 0;
};

struct LoadedPair;   // a parsed leaf, chain and key (tls_context.cc)

// The certificate a [[tls.traefik]] source serves now: of the entries in Traefik's
// acme.json (of its resolver, if named) whose certificate covers every wanted name, the one
// that expires last. `skipped` names entries that could not be used.
struct TraefikChoice {
  CertificateInfo info;
  std::shared_ptr<LoadedPair> loaded;
  std::vector<std::string> skipped;
};
Result<TraefikChoice> chooseFromTraefik(const config::TraefikSource& src, FileSource& files);

// Loads and checks one cert/key pair: readable PEM, key matches certificate.
Result<CertificateInfo> inspectPair(const config::CertificatePair& pair, FileSource& files = directFiles());

// The server side as one immutable value: a context per distinct set of names (an RSA
// and an ECDSA certificate for the same names share one context, and OpenSSL picks by
// what the client supports), and the SNI table that switches between them. Handshakes
// hold a reference for as long as they run, so a reload never pulls it from under them.
struct TlsSnapshot {
  SslCtxPtr default_ctx;                                  // the [tls] cert/key (and same-name pairs)
  std::vector<std::pair<std::string, SslCtxPtr>> names;   // "mail.example.com", "*.example.org"
  std::vector<CertificateInfo> certificates;
  // Context for an SNI name: exact match first, then a "*." wildcard one label up; null: default.
  SSL_CTX* forServerName(std::string_view name) const;
};
Result<std::shared_ptr<const TlsSnapshot>> buildServerTls(const config::Tls& tls, FileSource& files = directFiles());
inline constexpr long kExpirySoonDays = 14;
// `config check` for certificates: each pair readable, PEM, key matching; an expired
// certificate is an error, one expiring within kExpirySoonDays a warning, and a note
// names each certificate's names and days left.
std::vector<config::Diagnostic> checkCertificates(const config::Config& c);

// `postern cert status`: every certificate the configuration names, in order, each loaded
// on its own (one that fails does not hide the others).
struct SourceStatus {
  std::string source;                  // the file, or "acme.json (resolver r)"
  std::optional<CertificateInfo> info; // set when it loaded
  std::string error;                   // why it did not
};
std::vector<SourceStatus> certificateStatus(const config::Tls& tls, FileSource& files = directFiles());

// A client context (doctor, load generator): verification with system CAs or `ca_file`.
Result<SslCtxPtr> makeClientContext(const std::string& ca_file, bool verify);

class CertStore {
 public:
  // Certificates and keys are read through `files` (the privileged reader after a drop).
  explicit CertStore(config::Tls tls, FileSource& files = directFiles()) : tls_(std::move(tls)), files_(files) {}
  // Builds the first snapshot; an error here refuses to start.
  Status load();
  // Rebuilds from the files; on failure the previous snapshot keeps serving.
  Status reload();
  std::shared_ptr<const TlsSnapshot> current() const;
  std::vector<CertificateInfo> certificates() const;
  const config::Tls& settings() const { return tls_; }
  // Every certificate and key file, for the file watcher.
  std::vector<std::string> files() const;

 private:
  config::Tls tls_;
  FileSource& files_;
  mutable std::mutex mu_;
  std::shared_ptr<const TlsSnapshot> snap_;
};

}  // namespace postern::tls
