// DKIM signatures, RFC 6376 §3.5 (tags), §3.7 (hash computation), §5 (signer actions);
// RFC 8463 (ed25519-sha256); RFC 8301 (RSA key sizes). The cryptography is OpenSSL's.
#include "dkim/signer.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include <vector>

#include "dkim/canon.h"
#include "util/base64.h"

namespace postern::dkim {
namespace {

using Bytes = std::vector<unsigned char>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* p) {
  return std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free);
}

std::string base64(const unsigned char* p, size_t n) {
  return base64Encode(std::string_view(reinterpret_cast<const char*>(p), n));
}

// Base64 without whitespace; nullopt when it is not base64.
std::optional<Bytes> unbase64(std::string_view in) {
  std::string s;
  for (char c : in)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') s += c;
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  Bytes out(s.size() / 4 * 3);
  int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return std::nullopt;
  size_t pad = (s.back() == '=') + (s.size() > 1 && s[s.size() - 2] == '=');
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

Result<SigningKey> describe(std::shared_ptr<EVP_PKEY> pkey) {
  SigningKey k;
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    k.type = KeyType::kRsa;
    k.bits = static_cast<unsigned>(EVP_PKEY_get_bits(pkey.get()));
    if (k.bits < kMinRsaBits)
      return Status::invalid(fmt::format("RSA key of {} bits: RFC 8301 requires at least {}", k.bits, kMinRsaBits));
  } else if (EVP_PKEY_is_a(pkey.get(), "ED25519")) {
    k.type = KeyType::kEd25519;
    k.bits = 256;
  } else {
    return Status::unsupported("not an RSA or Ed25519 key (DKIM signs with rsa-sha256 or ed25519-sha256)");
  }
  k.pkey = std::move(pkey);
  return k;
}

// Appends `text` to a field being folded at kFoldColumn: whole if it fits on the current
// line, otherwise after a fold ("CRLF TAB"); `breakable` text may also be cut between any
// two characters (base64 values, where RFC 6376 §3.5 allows FWS anywhere) once its first
// `keep` characters are on the line.
void appendFolded(std::string& out, size_t& col, std::string_view text, bool space, bool breakable = false,
                  size_t keep = 0) {
  size_t need = (space ? 1 : 0) + (breakable ? std::min(text.size(), keep + 8) : text.size());
  if (col + need > kFoldColumn && col > 1) {
    out += "\r\n\t";
    col = 8;  // a tab to the next stop
  } else if (space) {
    out += ' ';
    ++col;
  }
  while (breakable && col + text.size() > kFoldColumn && kFoldColumn > col) {
    size_t n = kFoldColumn - col;
    out.append(text.substr(0, n));
    text.remove_prefix(n);
    out += "\r\n\t";
    col = 8;
  }
  out.append(text);
  col += text.size();
}

Result<std::string> rawSign(const SigningKey& key, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) return Status::io("out of memory");
  const unsigned char* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t in_len = data.size();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const EVP_MD* md = EVP_sha256();
  if (key.type == KeyType::kEd25519) {
    // RFC 8463 §3: PureEdDSA over the SHA-256 hash of the header hash input.
    SHA256(in, in_len, digest);
    in = digest, in_len = sizeof digest, md = nullptr;
  }
  size_t sig_len = 0;
  bool ok = EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.pkey.get()) == 1 &&
            EVP_DigestSign(ctx.get(), nullptr, &sig_len, in, in_len) == 1;  // the size first
  Bytes sig(ok ? sig_len : 0);
  ok = ok && EVP_DigestSign(ctx.get(), sig.data(), &sig_len, in, in_len) == 1;
  if (!ok) {
    ERR_clear_error();  // this thread may run TLS next: no stale errors for SSL_get_error
    return Status::io("the signature could not be computed (OpenSSL)");
  }
  return base64(sig.data(), sig_len);
}

}  // namespace

std::string_view keyTypeName(KeyType t) {
  return t == KeyType::kRsa ? "rsa" : "ed25519";
}
std::string_view algorithmName(KeyType t) {
  return t == KeyType::kRsa ? "rsa-sha256" : "ed25519-sha256";
}

Result<SigningKey> parsePrivateKey(std::string_view contents) {
  if (contents.find("-----BEGIN") != std::string_view::npos) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(contents.data(), static_cast<int>(contents.size())),
                                                  BIO_free);
    // No passphrase callback: OpenSSL's default one would wait for a passphrase on the terminal.
    pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
    EVP_PKEY* p = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr;
    if (!p) {
      ERR_clear_error();  // this thread may run TLS next: no stale errors for SSL_get_error
      return Status::invalid("no private key in the PEM text (an encrypted key or a public key is not usable)");
    }
    return describe(own(p));
  }
  // rspamd's Ed25519 keys: base64 of the 32-byte seed, or of seed + public key (libsodium).
  std::optional<Bytes> raw = unbase64(contents);
  if (!raw || (raw->size() != 32 && raw->size() != 64))
    return Status::invalid("neither a PEM private key nor a base64 Ed25519 key");
  EVP_PKEY* p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw->data(), 32);
  if (!p) {
    ERR_clear_error();
    return Status::invalid("not a usable Ed25519 key");
  }
  return describe(own(p));
}

Result<SigningKey> generateKey(KeyType type, unsigned bits) {
  EVP_PKEY* p = nullptr;
  if (type == KeyType::kRsa) {
    if (bits < kMinRsaBits || bits > kMaxRsaBits)
      return Status::invalid(fmt::format("RSA keys must have {} to {} bits", kMinRsaBits, kMaxRsaBits));
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  } else {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  if (!p) {
    ERR_clear_error();
    return Status::io("key generation failed (OpenSSL)");
  }
  return describe(own(p));
}

Result<std::string> privateKeyPem(const SigningKey& key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status::io("the key could not be written as PEM (OpenSSL)");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> dnsTxtValue(const SigningKey& key) {
  std::string p;
  if (key.type == KeyType::kEd25519) {
    unsigned char pub[32];
    size_t len = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(key.pkey.get(), pub, &len) != 1) return Status::io("no Ed25519 public key");
    p = base64(pub, len);
  } else {
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key.pkey.get(), &der);
    if (len <= 0) return Status::io("no RSA public key");
    p = base64(der, static_cast<size_t>(len));
    OPENSSL_free(der);
  }
  return fmt::format("v=DKIM1; k={}; p={}", keyTypeName(key.type), p);
}

std::string dnsRecordLine(const std::string& domain, const std::string& selector, const std::string& txt) {
  std::string line = fmt::format("{}._domainkey.{}. IN TXT", selector, domain);
  for (size_t i = 0; i < txt.size(); i += kTxtStringMax) line += fmt::format(" \"{}\"", txt.substr(i, kTxtStringMax));
  return line;
}

Result<std::string> signMessage(std::string_view message, const SigningKey& key, int64_t now) {
  Result<MessageParts> parts = splitMessage(message);
  if (!parts) return parts.status();
  const MessageParts& m = parts.value();

  // §3.7: body hash over the canonical body.
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> body_ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!body_ctx || EVP_DigestInit_ex(body_ctx.get(), EVP_sha256(), nullptr) != 1)
    return Status::io("SHA-256 unavailable");
  BodyCanonicalizer body(Canon::kRelaxed,
                         [&](std::string_view s) { EVP_DigestUpdate(body_ctx.get(), s.data(), s.size()); });
  body.feed(m.body);
  body.finish();
  unsigned char bh[EVP_MAX_MD_SIZE];
  unsigned bh_len = 0;
  EVP_DigestFinal_ex(body_ctx.get(), bh, &bh_len);

  // §3.5: the field, folded, with an empty b= for now.
  std::vector<std::string> h = chooseSignedHeaders(m);
  std::string field = "DKIM-Signature:";
  size_t col = field.size();
  appendFolded(field, col, "v=1;", true);
  appendFolded(field, col, fmt::format("a={};", algorithmName(key.type)), true);
  appendFolded(field, col, "c=relaxed/relaxed;", true);
  appendFolded(field, col, fmt::format("d={};", key.domain), true);
  appendFolded(field, col, fmt::format("s={};", key.selector), true);
  appendFolded(field, col, fmt::format("t={};", now), true);
  // h= may fold around each colon (§3.5 sig-h-tag).
  for (size_t i = 0; i < h.size(); ++i)
    appendFolded(field, col, fmt::format("{}{}{}", i == 0 ? "h=" : "", h[i], i + 1 == h.size() ? ";" : ":"), i == 0);
  appendFolded(field, col, fmt::format("bh={};", base64(bh, bh_len)), true, true, 3);
  appendFolded(field, col, "b=", true);

  // §3.7: the signed fields, then this field with b= empty and without its CRLF.
  std::string input = headerHashInput(m, h, Canon::kRelaxed);
  std::string self = canonicalHeader(HeaderField{"DKIM-Signature", field}, Canon::kRelaxed);
  self.resize(self.size() - 2);
  input += self;
  Result<std::string> b = rawSign(key, input);
  if (!b) return b.status();
  appendFolded(field, col, b.value(), false, true, 0);
  field += "\r\n";
  return field;
}

}  // namespace postern::dkim
