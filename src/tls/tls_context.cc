#include "tls/tls_context.h"

#include "tls/traefik_acme.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace postern::tls {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One certificate/key pair as read: the leaf, the certificates that follow it in the
// chain file (intermediates), and the key. Read from memory so that the bytes can come
// through the privileged reader once the daemon no longer runs as root.
struct LoadedPair {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;
  PkeyPtr key;
};

namespace {

std::string opensslError() {
  unsigned long e = ERR_get_error();
  std::string out = e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error" : "unknown error";
  ERR_clear_error();
  return out;
}

// `cert_label`/`key_label` name the sources in messages (a file, or an acme.json entry).
Result<LoadedPair> parsePair(std::string& cert_pem, std::string& key_pem, const std::string& cert_label,
                             const std::string& key_label) {
  LoadedPair out;
  std::unique_ptr<BIO, BioFree> cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  out.leaf.reset(PEM_read_bio_X509_AUX(cb.get(), nullptr, nullptr, nullptr));
  if (!out.leaf) {
    ERR_clear_error();
    return Status::invalid(fmt::format("'{}' holds no PEM certificate", cert_label));
  }
  while (X509* x = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) out.chain.emplace_back(x);
  ERR_clear_error();   // the end of the file reads as "no start line"
  std::unique_ptr<BIO, BioFree> kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  out.key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!out.key) {
    ERR_clear_error();
    return Status::invalid(fmt::format("'{}' holds no PEM private key (or it is encrypted)", key_label));
  }
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    ERR_clear_error();
    return Status::invalid(fmt::format("key '{}' does not match certificate '{}'", key_label, cert_label));
  }
  return out;
}

Result<LoadedPair> readPair(const config::CertificatePair& pair, FileSource& files) {
  auto cert_pem = files.read(pair.cert);
  if (!cert_pem) return Status::io(fmt::format("cannot read certificate '{}': {}", pair.cert, cert_pem.status().message()));
  auto key_pem = files.read(pair.key);
  if (!key_pem) return Status::io(fmt::format("cannot read key '{}': {}", pair.key, key_pem.status().message()));
  return parsePair(*cert_pem, *key_pem, pair.cert, pair.key);
}

void fillInfo(X509* x, CertificateInfo& info) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  info.subject = buf;
  X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof buf);
  info.issuer = buf;
  if (ASN1_INTEGER* s = X509_get_serialNumber(x)) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(s, nullptr);
    char* hex = BN_bn2hex(bn);
    info.serial_hex = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_DNS) {
        const unsigned char* d = ASN1_STRING_get0_data(gn->d.dNSName);
        info.names.emplace_back(reinterpret_cast<const char*>(d), ASN1_STRING_length(gn->d.dNSName));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (info.names.empty()) {
    int idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(x), idx));
      info.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)), ASN1_STRING_length(cn));
    }
  }
  const ASN1_TIME* na = X509_get0_notAfter(x);
  struct tm t{};
  if (ASN1_TIME_to_tm(na, &t) == 1) info.not_after = timegm(&t);
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, na) == 1) info.days_left = days;
}

}  // namespace

namespace {

CertificateInfo describe(const std::string& label, const LoadedPair& loaded) {
  CertificateInfo info;
  info.cert_path = label;
  fillInfo(loaded.leaf.get(), info);
  int id = EVP_PKEY_get_base_id(loaded.key.get());
  info.key_type = id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : id == EVP_PKEY_ED25519 ? "ED25519" : "other";
  return info;
}

// Whether a certificate name (possibly "*.example.com", one label, RFC 6125 §6.4.3) covers `want`.
bool covers(std::string_view have, std::string_view want) {
  auto lower = [](std::string_view v) {
    std::string o(v);
    for (char& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return o;
  };
  std::string h = lower(have), w = lower(want);
  if (h == w) return true;
  if (h.rfind("*.", 0) != 0) return false;
  size_t dot = w.find('.');
  return dot != std::string::npos && dot > 0 && w.substr(dot) == h.substr(1);
}

}  // namespace

Result<TraefikChoice> chooseFromTraefik(const config::TraefikSource& src, FileSource& files) {
  auto text = files.read(src.file);
  if (!text) return Status::io(fmt::format("cannot read Traefik's '{}': {}", src.file, text.status().message()));
  auto parsed = parseTraefikAcme(*text);
  OPENSSL_cleanse(text->data(), text->size());
  if (!parsed) return Status::invalid(fmt::format("'{}': {}", src.file, parsed.status().message()));
  if (!src.resolver.empty() &&
      std::find(parsed->resolvers.begin(), parsed->resolvers.end(), src.resolver) == parsed->resolvers.end())
    return Status::invalid(fmt::format("'{}' has no certificate resolver '{}' (it has: {})", src.file, src.resolver,
                                       parsed->resolvers.empty() ? std::string("none")
                                                                 : fmt::format("{}", fmt::join(parsed->resolvers, ", "))));
  // The entry to serve: one whose certificate (not the JSON's claim) covers every wanted
  // name, of those the one that expires last. Traefik keeps renewed and outdated entries
  // side by side; taking the first match is how an outdated certificate gets served.
  TraefikChoice best;
  bool found = false;
  std::vector<std::string> seen;
  for (auto& e : parsed->entries) {
    if (!src.resolver.empty() && e.resolver != src.resolver) continue;
    std::string label = fmt::format("{} ({}entry {} {})", src.file,
                                    e.resolver.empty() ? std::string() : "resolver " + e.resolver + ", ", e.index, e.main);
    auto loaded = parsePair(e.cert_pem, e.key_pem, label, label);
    if (!loaded) {
      seen.push_back(fmt::format("{}: {}", label, loaded.status().message()));
      continue;
    }
    CertificateInfo info = describe(label, *loaded);
    bool all = true;
    for (const auto& want : src.names) {
      bool one = false;
      for (const auto& have : info.names) one = one || covers(have, want);
      all = all && one;
    }
    seen.push_back(fmt::format("{} for {}", label, fmt::join(info.names, ",")));
    if (!all) continue;
    if (!found || info.not_after > best.info.not_after) {
      best.info = std::move(info);
      best.loaded = std::make_shared<LoadedPair>(std::move(loaded).value());
      found = true;
    }
  }
  if (!found)
    return Status::notFound(fmt::format("'{}' holds no certificate for {}{}; it has: {}", src.file,
                                        fmt::join(src.names, ", "),
                                        src.resolver.empty() ? std::string() : " from resolver " + src.resolver,
                                        seen.empty() ? std::string("none") : fmt::format("{}", fmt::join(seen, "; "))));
  best.skipped = parsed->problems;
  return best;
}

Result<CertificateInfo> inspectPair(const config::CertificatePair& pair, FileSource& files) {
  auto loaded = readPair(pair, files);
  if (!loaded) return loaded.status();
  return describe(pair.cert, *loaded);
}

namespace {

// A context with the secure defaults and no certificate yet.
Result<SslCtxPtr> newServerContext(const config::Tls& tls) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SslCtxDeleter());
  if (!ctx) return Status::io("SSL_CTX_new: " + opensslError());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // No compression (CRIME), no renegotiation at all (client-initiated renegotiation is
  // already refused by OpenSSL 3's defaults), our cipher order.
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  const std::string ciphers = tls.ciphers.empty() ? kIntermediateCiphers : tls.ciphers;
  if (SSL_CTX_set_cipher_list(c, ciphers.c_str()) != 1)
    return Status::invalid(fmt::format("[tls] ciphers \"{}\": {}", ciphers, opensslError()));
  if (!tls.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c, tls.ciphersuites.c_str()) != 1)
    return Status::invalid(fmt::format("[tls] ciphersuites \"{}\": {}", tls.ciphersuites, opensslError()));
  // Key exchange only on groups of at least 128-bit strength.
  SSL_CTX_set1_groups_list(c, kGroups);
  // Resumption by session tickets; OpenSSL makes fresh random ticket keys for every
  // context, so each reload (and each restart) rotates them, in memory only.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(c, reinterpret_cast<const unsigned char*>("postern"), 7);
  SSL_CTX_set_num_tickets(c, 1);
  return ctx;
}

Status addPair(SSL_CTX* c, const std::string& cert_label, const std::string& key_label, const LoadedPair& loaded) {
  // use_certificate selects the slot of the leaf's key type; the chain is that slot's.
  if (SSL_CTX_use_certificate(c, loaded.leaf.get()) != 1)
    return Status::invalid(fmt::format("certificate '{}': {}", cert_label, opensslError()));
  for (const auto& x : loaded.chain)
    if (SSL_CTX_add1_chain_cert(c, x.get()) != 1)
      return Status::invalid(fmt::format("certificate chain '{}': {}", cert_label, opensslError()));
  if (SSL_CTX_use_PrivateKey(c, loaded.key.get()) != 1)
    return Status::invalid(fmt::format("key '{}': {}", key_label, opensslError()));
  if (SSL_CTX_check_private_key(c) != 1)
    return Status::invalid(fmt::format("key '{}' does not match certificate '{}'", key_label, cert_label));
  return Status::ok();
}

int onServerName(SSL* ssl, int*, void* arg) {
  const auto* snap = static_cast<const TlsSnapshot*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;
  if (SSL_CTX* c = snap->forServerName(name); c && c != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, c);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

SSL_CTX* TlsSnapshot::forServerName(std::string_view name) const {
  std::string n(name);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& [pattern, ctx] : names)
    if (pattern == n) return ctx.get();
  size_t dot = n.find('.');
  if (dot != std::string::npos) {
    std::string wild = "*" + n.substr(dot);
    for (const auto& [pattern, ctx] : names)
      if (pattern == wild) return ctx.get();
  }
  return nullptr;
}

namespace {

// Every certificate the configuration names, loaded, in order: [tls] cert/key (if any),
// [[tls.certificate]], [[tls.traefik]]. The first is the default.
struct Item {
  std::string cert_label, key_label;
  std::shared_ptr<LoadedPair> loaded;
  CertificateInfo info;
};

Result<std::vector<Item>> loadAll(const config::Tls& tls, FileSource& files) {
  std::vector<Item> items;
  std::vector<config::CertificatePair> pairs;
  if (!tls.default_cert.cert.empty()) pairs.push_back(tls.default_cert);
  pairs.insert(pairs.end(), tls.extra.begin(), tls.extra.end());
  for (const auto& p : pairs) {
    auto loaded = readPair(p, files);
    if (!loaded) return loaded.status();
    Item it{p.cert, p.key, std::make_shared<LoadedPair>(std::move(loaded).value()), {}};
    it.info = describe(p.cert, *it.loaded);
    items.push_back(std::move(it));
  }
  for (const auto& src : tls.traefik) {
    auto chosen = chooseFromTraefik(src, files);
    if (!chosen) return chosen.status();
    items.push_back(Item{chosen->info.cert_path, chosen->info.cert_path, chosen->loaded, chosen->info});
  }
  if (items.empty()) return Status::invalid("[tls] names no certificate");
  return items;
}

}  // namespace

Result<std::shared_ptr<const TlsSnapshot>> buildServerTls(const config::Tls& tls, FileSource& files) {
  auto snap = std::make_shared<TlsSnapshot>();
  auto items = loadAll(tls, files);
  if (!items) return items.status();
  // Group pairs by their name set; the group holding the default certificate is the default.
  std::vector<std::pair<std::vector<std::string>, SslCtxPtr>> groups;
  for (auto& item : *items) {
    std::vector<std::string> key = item.info.names;
    for (auto& n : key)
      for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::sort(key.begin(), key.end());
    SslCtxPtr ctx;
    for (auto& [names, c] : groups)
      if (names == key) ctx = c;
    if (!ctx) {
      auto made = newServerContext(tls);
      if (!made) return made.status();
      ctx = *made;
      groups.emplace_back(key, ctx);
    }
    if (Status s = addPair(ctx.get(), item.cert_label, item.key_label, *item.loaded); !s) return s;
    snap->certificates.push_back(std::move(item.info));
  }
  snap->default_ctx = groups.front().second;
  for (const auto& [names, ctx] : groups)
    for (const auto& n : names) snap->names.emplace_back(n, ctx);
  // Every context may receive the ClientHello first (SSL_new uses the default), but only
  // the default one's callback runs before the switch; set it on all for clarity.
  for (const auto& [names, ctx] : groups) {
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), snap.get());
  }
  return std::shared_ptr<const TlsSnapshot>(std::move(snap));
}

std::vector<config::Diagnostic> checkCertificates(const config::Config& c) {
  using Sev = config::Diagnostic::Severity;
  std::vector<config::Diagnostic> out;
  if (!c.tls.configured) return out;
  std::vector<config::CertificatePair> pairs;
  if (!c.tls.default_cert.cert.empty()) pairs.push_back(c.tls.default_cert);
  pairs.insert(pairs.end(), c.tls.extra.begin(), c.tls.extra.end());
  auto judge = [&](const config::Position& pos, const std::string& what, const CertificateInfo& info) {
    std::string names = fmt::format("{}", fmt::join(info.names, ", "));
    if (info.days_left < 0 || (info.days_left == 0 && info.not_after <= time(nullptr)))
      out.push_back({Sev::kError, pos, fmt::format("certificate '{}' ({}) has expired", what, names)});
    else if (info.days_left <= kExpirySoonDays)
      out.push_back({Sev::kWarning, pos, fmt::format("certificate '{}' ({}) expires in {} days", what, names, info.days_left)});
    else
      out.push_back({Sev::kNote, pos, fmt::format("certificate '{}' ({} key) for {}: {} days left", what,
                                                  info.key_type, names, info.days_left)});
  };
  for (const auto& p : pairs) {
    auto info = inspectPair(p);
    if (!info) out.push_back({Sev::kError, p.pos, info.status().message()});
    else judge(p.pos, p.cert, *info);
  }
  for (const auto& src : c.tls.traefik) {
    auto chosen = chooseFromTraefik(src, directFiles());
    if (!chosen) {
      out.push_back({Sev::kError, src.pos, chosen.status().message()});
      continue;
    }
    for (const auto& problem : chosen->skipped)
      out.push_back({Sev::kWarning, src.pos, fmt::format("'{}': skipped {}", src.file, problem)});
    judge(src.pos, chosen->info.cert_path, chosen->info);
  }
  return out;
}

std::vector<SourceStatus> certificateStatus(const config::Tls& tls, FileSource& files) {
  std::vector<SourceStatus> out;
  if (!tls.configured) return out;
  std::vector<config::CertificatePair> pairs;
  if (!tls.default_cert.cert.empty()) pairs.push_back(tls.default_cert);
  pairs.insert(pairs.end(), tls.extra.begin(), tls.extra.end());
  for (const auto& p : pairs) {
    SourceStatus st{p.cert, std::nullopt, ""};
    if (auto info = inspectPair(p, files)) st.info = *info;
    else st.error = info.status().message();
    out.push_back(std::move(st));
  }
  for (const auto& src : tls.traefik) {
    SourceStatus st{src.resolver.empty() ? src.file : fmt::format("{} (resolver {})", src.file, src.resolver),
                    std::nullopt, ""};
    if (auto chosen = chooseFromTraefik(src, files)) st.info = chosen->info;
    else st.error = chosen.status().message();
    out.push_back(std::move(st));
  }
  return out;
}

Result<SslCtxPtr> makeClientContext(const std::string& ca_file, bool verify) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SslCtxDeleter());
  if (!ctx) return Status::io("SSL_CTX_new: " + opensslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
        return Status::invalid(fmt::format("CA file '{}': {}", ca_file, opensslError()));
    } else {
      SSL_CTX_set_default_verify_paths(ctx.get());
    }
  }
  return ctx;
}

Status CertStore::load() { return reload(); }

Status CertStore::reload() {
  auto snap = buildServerTls(tls_, files_);
  if (!snap) return snap.status();
  std::lock_guard lock(mu_);
  snap_ = *snap;
  return Status::ok();
}

std::shared_ptr<const TlsSnapshot> CertStore::current() const {
  std::lock_guard lock(mu_);
  return snap_;
}

std::vector<CertificateInfo> CertStore::certificates() const {
  std::lock_guard lock(mu_);
  return snap_ ? snap_->certificates : std::vector<CertificateInfo>{};
}

std::vector<std::string> CertStore::files() const {
  std::vector<std::string> out;
  if (!tls_.default_cert.cert.empty()) out = {tls_.default_cert.cert, tls_.default_cert.key};
  for (const auto& p : tls_.extra) {
    out.push_back(p.cert);
    out.push_back(p.key);
  }
  for (const auto& t : tls_.traefik) out.push_back(t.file);
  return out;
}

}  // namespace postern::tls
