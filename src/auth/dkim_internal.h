// The parts of DKIM verification that ARC reuses (RFC 8617 §5.1: "the same as DKIM"): key
// lookup and checks (RFC 6376 §6.1.2), body hash (§3.7 with l=), the signature field with
// b= emptied (§3.7), and the rsa-sha256 / ed25519-sha256 check (RFC 8463 §3). Internal to
// src/auth/dkim_verify.cc and src/auth/arc.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/dkim_verify.h"
#include "auth/dns.h"
#include "dkim/canon.h"
#include "net/asio.h"

struct evp_pkey_st;

namespace postern::auth::dkimint {

// Bodies up to this size are hashed on the calling thread: handing them to the CPU pool
// costs more than the hashing (two thread wake-ups against ~10 µs for 4 KiB).
inline constexpr size_t kInlineHashMax = 64 * 1024;

struct PublicKey {
  DkimKey record;
  std::shared_ptr<evp_pkey_st> pkey;
  unsigned bits = 0;
};

// The key for `selector`._domainkey.`domain`, checked against the algorithm: result kNone
// when usable, else the result and reason the signature gets (see DkimResult's mapping).
struct KeyOutcome {
  DkimResult failure = DkimResult::kNone;
  std::string reason;
  PublicKey key;
};
net::awaitable<KeyOutcome> fetchKey(Dns& dns, std::string selector, std::string domain, DkimAlgorithm alg);

// SHA-256 of the canonical body, of its first `limit` octets when given; `canonical_size` is
// the whole canonical body's size (to refuse an l= beyond it).
std::string bodyHash(std::string_view body, dkim::Canon c, std::optional<uint64_t> limit, uint64_t& canonical_size);

// `f` (a DKIM-Signature, ARC-Message-Signature or ARC-Seal) with its b= value removed,
// canonicalized, without the final CRLF: the last part of the header hash input (§3.7).
std::string signatureFieldInput(const dkim::HeaderField& f, dkim::Canon c);

// Whether `b64` (b=, FWS removed) is a valid signature of `header_input` with `key`.
bool verifySignature(const PublicKey& key, DkimAlgorithm alg, std::string_view header_input, std::string_view b64);

}  // namespace postern::auth::dkimint
