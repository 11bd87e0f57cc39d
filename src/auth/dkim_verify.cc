// DKIM verification, RFC 6376 §6.1: per signature, the checks of §6.1.1, the key of
// §6.1.2, the hashes of §6.1.3 (§3.7); RFC 8463 ed25519-sha256; RFC 8301 (no rsa-sha1, RSA
// keys of at least 1024 bits). Results as RFC 8601 §2.7.1 names them (see DkimResult).
#include "auth/dkim_verify.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>
#include <unordered_map>
#include <tuple>

#include "auth/dkim_internal.h"
#include "dkim/canon.h"
#include "util/strings.h"

namespace postern::auth {
namespace dkimint {
namespace {

constexpr size_t kHashChunk = 64 * 1024;   // bytes per digest update and per canonicalizer feed

bool fws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* p) {
  return std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free);
}

// p= of an RSA key: SubjectPublicKeyInfo (§3.6.1), or a bare PKCS#1 RSAPublicKey as some
// generators publish.
std::shared_ptr<EVP_PKEY> loadRsa(const std::string& der) {
  const auto* in = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* p = d2i_PUBKEY(nullptr, &in, static_cast<long>(der.size()));
  if (p && !EVP_PKEY_is_a(p, "RSA")) {
    EVP_PKEY_free(p);
    p = nullptr;
  }
  if (!p) {
    in = reinterpret_cast<const unsigned char*>(der.data());
    p = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &in, static_cast<long>(der.size()));
  }
  ERR_clear_error();   // this thread may run TLS next: no stale errors for SSL_get_error
  return p ? own(p) : nullptr;
}

// Decoded public keys by record bytes. Decoding an RSA key (d2i_PUBKEY and OpenSSL's setup
// on first use) costs several times the signature check itself, and the same few keys sign
// most mail: they are decoded once. EVP_PKEY objects are only read after that, which OpenSSL
// allows from several threads. Bounded: the map is emptied when it is full.
constexpr size_t kDecodedKeyCacheEntries = 1024;

std::shared_ptr<EVP_PKEY> cachedKey(bool ed25519, const std::string& raw) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<EVP_PKEY>> cache;
  std::string k = (ed25519 ? "e:" : "r:") + raw;
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(k); it != cache.end()) return it->second;
  }
  std::shared_ptr<EVP_PKEY> key;
  if (ed25519) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
    EVP_PKEY* p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes, raw.size());
    ERR_clear_error();
    if (p) key = own(p);
  } else {
    key = loadRsa(raw);
  }
  if (!key) return nullptr;   // not cached: a bad record is rare and cheap to reject again
  std::lock_guard lock(mu);
  if (cache.size() >= kDecodedKeyCacheEntries) cache.clear();
  cache.emplace(std::move(k), key);
  return key;
}

}  // namespace

net::awaitable<KeyOutcome> fetchKey(Dns& dns, std::string selector, std::string domain, DkimAlgorithm alg) {
  KeyOutcome out;
  std::string name = selector + "._domainkey." + domain;
  dns::TxtAnswer answer = co_await dns.txt(name);
  switch (answer.outcome) {
    case dns::Outcome::kOk: break;
    case dns::Outcome::kTempFail:
      // §6.1.2 step 2: TEMPFAIL (key unavailable).
      out.failure = DkimResult::kTempError;
      out.reason = fmt::format("key lookup failed temporarily ({})", answer.error.empty() ? "timeout" : answer.error);
      co_return out;
    case dns::Outcome::kNxDomain:
    case dns::Outcome::kNoData:
      // §6.1.2 step 3: PERMFAIL (no key for signature).
      out.failure = DkimResult::kPermError;
      out.reason = "no key for signature";
      co_return out;
    case dns::Outcome::kPermFail:
      out.failure = DkimResult::kPermError;
      out.reason = fmt::format("key lookup failed ({})", answer.error);
      co_return out;
  }
  // §6.1.2 step 4: a record that does not parse is PERMFAIL (key syntax error); of several
  // records the first that parses is used.
  std::optional<DkimKey> key;
  std::string first_error;
  for (size_t i = 0; i < answer.records.size() && i < kDkimMaxKeyRecords && !key; ++i) {
    auto k = parseDkimKey(answer.records[i]);
    if (k)
      key = std::move(*k);
    else if (first_error.empty())
      first_error = k.status().message();
  }
  out.failure = DkimResult::kPermError;
  if (!key) {
    out.reason = fmt::format("key syntax error: {}", first_error.empty() ? "no record" : first_error);
    co_return out;
  }
  const DkimKey& k = *key;
  if (k.public_key.empty()) {
    // §6.1.2 step 6 (§3.6.1 p=): "treat this as a failed signature check" (key revoked).
    out.failure = DkimResult::kFail;
    out.reason = "key revoked";
    co_return out;
  }
  if (!k.services.empty() && std::find(k.services.begin(), k.services.end(), "*") == k.services.end() &&
      std::find(k.services.begin(), k.services.end(), "email") == k.services.end()) {
    out.reason = "key is not for email (s=)";
    co_return out;
  }
  bool ed = alg == DkimAlgorithm::kEd25519Sha256;
  if ((k.key_type == "ed25519") != ed) {
    // §6.1.2 step 8: PERMFAIL (inappropriate key algorithm).
    out.reason = fmt::format("key type k={} does not match a={}", k.key_type, dkimAlgorithmName(alg));
    co_return out;
  }
  std::string hash = alg == DkimAlgorithm::kRsaSha1 ? "sha1" : "sha256";
  if (!k.hashes.empty() && std::find(k.hashes.begin(), k.hashes.end(), hash) == k.hashes.end()) {
    // §6.1.2 step 7: PERMFAIL (inappropriate hash algorithm).
    out.reason = fmt::format("key h= does not allow {}", hash);
    co_return out;
  }
  PublicKey pk;
  if (ed) {
    pk.pkey = cachedKey(true, k.public_key);
    if (!pk.pkey) {
      out.reason = "key syntax error: p= is not an Ed25519 key";
      co_return out;
    }
    pk.bits = 256;
  } else {
    pk.pkey = cachedKey(false, k.public_key);
    if (!pk.pkey) {
      out.reason = "key syntax error: p= is not an RSA public key";
      co_return out;
    }
    pk.bits = static_cast<unsigned>(EVP_PKEY_get_bits(pk.pkey.get()));
    if (pk.bits < kDkimMinRsaBits) {
      // RFC 8301 §3.2: "Verifiers MUST NOT consider signatures using RSA keys of less than
      // 1024 bits as valid signatures."
      out.failure = DkimResult::kPolicy;
      out.reason = fmt::format("RSA key of {} bits is below {} (RFC 8301)", pk.bits, kDkimMinRsaBits);
      co_return out;
    }
  }
  pk.record = k;
  out.failure = DkimResult::kNone;
  out.key = std::move(pk);
  co_return out;
}

std::string bodyHash(std::string_view body, dkim::Canon c, std::optional<uint64_t> limit, uint64_t& canonical_size) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
  uint64_t size = 0;
  // The canonicalizer hands out a line at a time; the digest gets kHashChunk bytes at once.
  std::string chunk;
  chunk.reserve(kHashChunk);
  dkim::BodyCanonicalizer canon(c, [&](std::string_view s) {
    uint64_t take = s.size();
    if (limit) take = size >= *limit ? 0 : std::min<uint64_t>(take, *limit - size);
    chunk.append(s.substr(0, static_cast<size_t>(take)));
    if (chunk.size() >= kHashChunk) {
      EVP_DigestUpdate(ctx.get(), chunk.data(), chunk.size());
      chunk.clear();
    }
    size += s.size();
  });
  for (size_t at = 0; at < body.size(); at += kHashChunk) canon.feed(body.substr(at, kHashChunk));
  canon.finish();
  EVP_DigestUpdate(ctx.get(), chunk.data(), chunk.size());
  canonical_size = size;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string signatureFieldInput(const dkim::HeaderField& f, dkim::Canon c) {
  std::string raw(f.raw);
  // Find the b= tag-spec (not bh=) and remove its value; FWS before the value goes too and
  // FWS after it stays, so "b= abc ;" hashes as "b= ;" (the usual reading of §3.5 b=).
  size_t pos = raw.find(':');
  pos = pos == std::string::npos ? raw.size() : pos + 1;
  while (pos < raw.size()) {
    size_t end = raw.find(';', pos);
    if (end == std::string::npos) end = raw.size();
    size_t eq = raw.find('=', pos);
    if (eq != std::string::npos && eq < end) {
      size_t ns = pos, ne = eq;
      while (ns < ne && fws(raw[ns])) ++ns;
      while (ne > ns && fws(raw[ne - 1])) --ne;
      if (raw.compare(ns, ne - ns, "b") == 0) {
        size_t ve = end;
        while (ve > eq + 1 && fws(raw[ve - 1])) --ve;
        raw.erase(eq + 1, ve - (eq + 1));
        break;
      }
    }
    pos = end + 1;
  }
  std::string out = dkim::canonicalHeader(dkim::HeaderField{f.name, raw}, c);
  out.resize(out.size() - 2);   // §3.7: without its final CRLF
  return out;
}

bool verifySignature(const PublicKey& key, DkimAlgorithm alg, std::string_view header_input, std::string_view b64) {
  auto sig = decodeBase64(b64);
  if (!sig || !key.pkey || alg == DkimAlgorithm::kRsaSha1) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) return false;
  const auto* in = reinterpret_cast<const unsigned char*>(header_input.data());
  size_t in_len = header_input.size();
  unsigned char digest[EVP_MAX_MD_SIZE];
  const EVP_MD* md = EVP_sha256();
  if (alg == DkimAlgorithm::kEd25519Sha256) {
    // RFC 8463 §3: PureEdDSA over the SHA-256 hash of the header hash input.
    unsigned len = 0;
    if (EVP_Digest(in, in_len, digest, &len, EVP_sha256(), nullptr) != 1) return false;
    in = digest, in_len = len, md = nullptr;
  }
  bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.pkey.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(), in,
                             in_len) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace dkimint

const char* dkimResultName(DkimResult r) {
  switch (r) {
    case DkimResult::kNone: return "none";
    case DkimResult::kPass: return "pass";
    case DkimResult::kFail: return "fail";
    case DkimResult::kNeutral: return "neutral";
    case DkimResult::kPolicy: return "policy";
    case DkimResult::kTempError: return "temperror";
    case DkimResult::kPermError: return "permerror";
  }
  return "none";
}

namespace {

using dkim::Canon;

struct Pending {
  size_t index = 0;              // into the verdicts
  DkimSignature sig;
  dkim::HeaderField field;
  dkimint::PublicKey key;
};

struct Outcome {
  size_t index = 0;
  DkimResult result = DkimResult::kNone;
  std::string reason;
};

// §6.1.3 for each signature whose key is usable: the body hash (l= honoured or not), then
// the header hash and the signature. Pure CPU work: runs on the cpu pool for large bodies.
std::vector<Outcome> checkHashes(const dkim::MessageParts& m, const std::vector<Pending>& pending, bool honour_length) {
  std::vector<Outcome> out;
  // Signatures of one message usually share canonicalization: one body hash each.
  std::map<std::tuple<bool, bool, uint64_t>, std::pair<std::string, uint64_t>> cache;
  for (const Pending& p : pending) {
    Outcome o;
    o.index = p.index;
    Canon body_canon = p.sig.body_relaxed ? Canon::kRelaxed : Canon::kSimple;
    std::optional<uint64_t> limit = honour_length ? p.sig.length : std::nullopt;
    auto key = std::make_tuple(p.sig.body_relaxed, limit.has_value(), limit.value_or(0));
    auto it = cache.find(key);
    if (it == cache.end()) {
      uint64_t size = 0;
      std::string h = dkimint::bodyHash(m.body, body_canon, limit, size);
      it = cache.emplace(key, std::make_pair(std::move(h), size)).first;
    }
    const auto& [hash, size] = it->second;
    if (limit && *limit > size) {
      o.result = DkimResult::kPermError;
      o.reason = fmt::format("l={} exceeds the body length {}", *limit, size);
    } else if (dkimint::decodeBase64(p.sig.bh) != hash) {
      o.result = DkimResult::kFail;
      o.reason = "body hash mismatch";
    } else {
      Canon hc = p.sig.header_relaxed ? Canon::kRelaxed : Canon::kSimple;
      std::string input = dkim::headerHashInput(m, p.sig.signed_headers, hc) + dkimint::signatureFieldInput(p.field, hc);
      if (dkimint::verifySignature(p.key, p.sig.algorithm, input, p.sig.b)) {
        o.result = DkimResult::kPass;
      } else {
        o.result = DkimResult::kFail;
        o.reason = "signature did not verify";
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

// What can be read from a signature that does not parse (or is not checked), for the report.
void describe(DkimVerdict& v, std::string_view value) {
  auto tags = parseTagList(value);
  if (!tags) return;
  for (const auto& [k, val] : *tags) {
    if (k == "d") v.domain = toLower(val.substr(0, 253));
    if (k == "s") v.selector = val.substr(0, 63);
    if (k == "i") v.identity = val.substr(0, 254);
    if (k == "a") v.algorithm = toLower(val.substr(0, 20));
    if (k == "b") {
      for (char c : val)
        if (v.b_prefix.size() < 8 && c != ' ' && c != '\t' && c != '\r' && c != '\n') v.b_prefix += c;
    }
  }
}

// A header section splitMessage refuses: is there a DKIM-Signature in it at all?
bool mentionsSignature(std::string_view message) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find("\r\n", pos);
    std::string_view line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.empty()) return false;
    if (line.size() >= 15 && iequals(line.substr(0, 14), "DKIM-Signature") &&
        (line[14] == ':' || line[14] == ' ' || line[14] == '\t'))
      return true;
    if (eol == std::string_view::npos) return false;
    pos = eol + 2;
  }
  return false;
}

}  // namespace

net::awaitable<std::vector<DkimVerdict>> verifyDkim(Dns& dns, std::shared_ptr<const std::string> message,
                                                    DkimVerifyOptions options, asio::thread_pool* cpu) {
  std::vector<DkimVerdict> out;
  auto parts = dkim::splitMessage(*message);
  if (!parts) {
    if (mentionsSignature(*message)) {
      DkimVerdict v;
      v.result = DkimResult::kPermError;
      v.reason = fmt::format("the header section cannot be parsed: {}", parts.status().message());
      out.push_back(std::move(v));
    }
    co_return out;
  }
  const int64_t now = options.now > 0 ? options.now : static_cast<int64_t>(std::time(nullptr));
  std::vector<Pending> pending;
  size_t seen = 0;
  for (const dkim::HeaderField& f : parts->fields) {
    if (!iequals(f.name, "DKIM-Signature")) continue;
    DkimVerdict v;
    std::string_view value = f.raw.substr(f.raw.find(':') + 1);
    describe(v, value);
    if (seen++ >= options.max_signatures) {
      v.result = DkimResult::kNone;
      v.reason = "not checked (limit)";
      out.push_back(std::move(v));
      continue;
    }
    auto sig = parseDkimSignature(value);
    if (!sig) {
      // §6.1.1: a signature that does not parse, or breaks a rule of §3.5, is PERMFAIL.
      v.result = DkimResult::kPermError;
      v.reason = sig.status().message();
      out.push_back(std::move(v));
      continue;
    }
    v.domain = sig->domain;
    v.selector = sig->selector;
    v.identity = sig->identity;
    v.algorithm = dkimAlgorithmName(sig->algorithm);
    v.b_prefix = sig->b.substr(0, 8);
    if (sig->algorithm == DkimAlgorithm::kRsaSha1) {
      v.result = DkimResult::kPolicy;
      v.reason = "rsa-sha1 is not accepted (RFC 8301)";
      out.push_back(std::move(v));
      continue;
    }
    if (sig->expiration && *sig->expiration < now) {
      // §6.1.1: "Verifiers MAY ignore the DKIM-Signature header field and return PERMFAIL
      // (signature expired)"; §3.5 x=: such signatures "MAY be considered invalid".
      v.result = DkimResult::kFail;
      v.reason = "signature expired";
      out.push_back(std::move(v));
      continue;
    }
    dkimint::KeyOutcome key = co_await dkimint::fetchKey(dns, sig->selector, sig->domain, sig->algorithm);
    if (key.failure != DkimResult::kNone) {
      v.result = key.failure;
      v.reason = std::move(key.reason);
      out.push_back(std::move(v));
      continue;
    }
    v.testing = key.key.record.testing;
    if (key.key.record.strict_identity) {
      // §3.6.1 t=s: the i= domain must be d= itself, not a subdomain.
      std::string idom = toLower(std::string_view(sig->identity).substr(sig->identity.rfind('@') + 1));
      if (idom != sig->domain) {
        v.result = DkimResult::kPermError;
        v.reason = "key t=s does not allow i= in a subdomain of d=";
        out.push_back(std::move(v));
        continue;
      }
    }
    Pending p;
    p.index = out.size();
    p.sig = std::move(*sig);
    p.field = f;
    p.key = std::move(key.key);
    pending.push_back(std::move(p));
    out.push_back(std::move(v));
  }
  if (pending.empty()) co_return out;

  std::vector<Outcome> outcomes;
  bool honour = options.honour_length;
  if (cpu && message->size() > dkimint::kInlineHashMax) {
    // The views in `m` point into *message: the task holds it even if this coroutine is gone.
    auto work = [message, m = *parts, pending = std::move(pending), honour]() { return checkHashes(m, pending, honour); };
    outcomes = co_await net::offload(*cpu, std::move(work));
  } else {
    outcomes = checkHashes(*parts, pending, honour);
  }
  for (Outcome& o : outcomes) {
    out[o.index].result = o.result;
    out[o.index].reason = std::move(o.reason);
  }
  co_return out;
}

}  // namespace postern::auth
