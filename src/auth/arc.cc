// ARC chain validation, RFC 8617 §5.2, with the DKIM machinery of dkim_internal.h.
#include "auth/arc.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <map>
#include <vector>

#include "auth/dkim_internal.h"
#include "dkim/canon.h"
#include "util/strings.h"

namespace postern::auth {
namespace {

using dkim::Canon;
using dkim::HeaderField;

enum Kind { kAar = 0, kAms = 1, kAs = 2 };
constexpr const char* kShort[] = {"AAR", "AMS", "AS"};

int kindOf(std::string_view name) {
  if (iequals(name, "ARC-Authentication-Results")) return kAar;
  if (iequals(name, "ARC-Message-Signature")) return kAms;
  if (iequals(name, "ARC-Seal")) return kAs;
  return -1;
}

std::string_view valueOf(const HeaderField& f) {
  return f.raw.substr(f.raw.find(':') + 1);
}

// The i= of an AMS or AS, before the rest of the field is looked at (§5.2 step 1 groups the
// fields into sets by instance).
Result<int> tagInstance(std::string_view value) {
  auto tags = parseTagList(value);
  if (!tags) return tags.status();
  for (const auto& [k, v] : *tags) {
    if (k != "i") continue;
    int n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || v.size() > 2 || n < 1 || n > kArcMaxInstances)
      return Status::invalid(fmt::format("i= is outside 1..{}", kArcMaxInstances));
    return n;
  }
  return Status::invalid("missing required tag i=");
}

bool mentionsArc(std::string_view message) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find("\r\n", pos);
    std::string_view line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.empty()) return false;
    if (line.size() >= 4 && iequals(line.substr(0, 4), "ARC-")) return true;
    if (eol == std::string_view::npos) return false;
    pos = eol + 2;
  }
  return false;
}

net::awaitable<const dkimint::KeyOutcome*> cachedKey(Dns& dns, std::map<std::string, dkimint::KeyOutcome>& keys,
                                                     std::string selector, std::string domain, DkimAlgorithm alg) {
  std::string id = fmt::format("{}._domainkey.{}/{}", selector, domain, dkimAlgorithmName(alg));
  auto it = keys.find(id);
  if (it == keys.end()) {
    dkimint::KeyOutcome k = co_await dkimint::fetchKey(dns, std::move(selector), std::move(domain), alg);
    it = keys.emplace(id, std::move(k)).first;
  }
  co_return &it->second;
}

}  // namespace

const char* arcResultName(ArcResult r) {
  switch (r) {
    case ArcResult::kNone: return "none";
    case ArcResult::kPass: return "pass";
    case ArcResult::kFail: return "fail";
  }
  return "none";
}

net::awaitable<ArcVerdict> verifyArc(Dns& dns, std::shared_ptr<const std::string> message, int64_t now,
                                     asio::thread_pool* cpu) {
  ArcVerdict v;
  auto failed = [&v](std::string reason) {
    v.result = ArcResult::kFail;
    v.reason = std::move(reason);
    return v;
  };
  if (now <= 0) now = static_cast<int64_t>(std::time(nullptr));
  auto parts = dkim::splitMessage(*message);
  if (!parts) {
    if (mentionsArc(*message)) co_return failed(fmt::format("the header section cannot be parsed: {}", parts.status().message()));
    co_return v;
  }
  const dkim::MessageParts& m = *parts;

  // §5.2 step 1: collect the sets; step 2: exactly one of each field per instance.
  std::vector<std::array<const HeaderField*, 3>> sets(kArcMaxInstances + 1, {nullptr, nullptr, nullptr});
  int newest = 0;
  for (const HeaderField& f : m.fields) {
    int kind = kindOf(f.name);
    if (kind < 0) continue;
    Result<int> inst = kind == kAar ? parseArcResultsInstance(valueOf(f)) : tagInstance(valueOf(f));
    if (!inst) co_return failed(fmt::format("{} without a valid i=: {}", kShort[kind], inst.status().message()));
    const HeaderField*& slot = sets[static_cast<size_t>(*inst)][static_cast<size_t>(kind)];
    if (slot) co_return failed(fmt::format("more than one {} i={}", kShort[kind], *inst));
    slot = &f;
    newest = std::max(newest, *inst);
  }
  if (newest == 0) co_return v;   // no ARC fields: arc=none
  v.instances = newest;
  // §5.2 step 4 (and §4.2.1): instances 1..N without gaps.
  for (int i = 1; i <= newest; ++i)
    for (int k = 0; k < 3; ++k)
      if (!sets[static_cast<size_t>(i)][static_cast<size_t>(k)])
        co_return failed(fmt::format("missing {} i={}", kShort[k], i));

  std::vector<ArcSeal> seals(static_cast<size_t>(newest) + 1);
  for (int i = 1; i <= newest; ++i) {
    auto s = parseArcSeal(valueOf(*sets[static_cast<size_t>(i)][kAs]));
    if (!s) co_return failed(fmt::format("AS i={}: {}", i, s.status().message()));
    seals[static_cast<size_t>(i)] = std::move(*s);
  }
  // §5.2 step 2 ("the form of any ARC Set"): every AMS must parse, though only the newest is
  // verified below.
  std::vector<DkimSignature> signatures(static_cast<size_t>(newest) + 1);
  for (int i = 1; i <= newest; ++i) {
    auto a = parseArcMessageSignature(valueOf(*sets[static_cast<size_t>(i)][kAms]));
    if (!a) co_return failed(fmt::format("AMS i={}: {}", i, a.status().message()));
    signatures[static_cast<size_t>(i)] = std::move(*a);
  }
  v.sealer = seals[static_cast<size_t>(newest)].domain;
  // §5.2 step 3: a chain its newest sealer declared failed stays failed.
  if (seals[static_cast<size_t>(newest)].cv == ArcChainStatus::kFail)
    co_return failed(fmt::format("AS i={} reports cv=fail", newest));
  // §5.2 step 4: cv=none at i=1, cv=pass above.
  for (int i = 1; i <= newest; ++i) {
    ArcChainStatus want = i == 1 ? ArcChainStatus::kNone : ArcChainStatus::kPass;
    if (seals[static_cast<size_t>(i)].cv != want)
      co_return failed(fmt::format("AS i={} has cv={}, not {}", i,
                                   seals[static_cast<size_t>(i)].cv == ArcChainStatus::kFail ? "fail"
                                   : seals[static_cast<size_t>(i)].cv == ArcChainStatus::kPass ? "pass"
                                                                                              : "none",
                                   want == ArcChainStatus::kNone ? "none" : "pass"));
  }

  // Keys by name and algorithm: a sealer's AMS and AS usually share one.
  std::map<std::string, dkimint::KeyOutcome> keys;
  auto keyFailed = [&](std::string_view what, const dkimint::KeyOutcome& k) {
    v.temporary = k.failure == DkimResult::kTempError;
    return failed(fmt::format("{}: {}", what, k.reason));
  };

  // §5.2 step 5: the newest AMS, verified as a DKIM signature (RFC 8617 §5.1.2).
  {
    std::string what = fmt::format("AMS i={}", newest);
    const HeaderField& f = *sets[static_cast<size_t>(newest)][kAms];
    const DkimSignature* ams = &signatures[static_cast<size_t>(newest)];
    if (ams->algorithm == DkimAlgorithm::kRsaSha1) co_return failed(what + ": rsa-sha1 is not accepted (RFC 8301)");
    if (ams->expiration && *ams->expiration < now) co_return failed(what + ": signature expired");
    const dkimint::KeyOutcome* k = co_await cachedKey(dns, keys, ams->selector, ams->domain, ams->algorithm);
    if (k->failure != DkimResult::kNone) co_return keyFailed(what, *k);
    Canon bc = ams->body_relaxed ? Canon::kRelaxed : Canon::kSimple;
    std::optional<uint64_t> limit = ams->length;
    // The body view points into *message: the task holds it even if this coroutine is gone.
    auto work = [message, body = m.body, bc, limit]() {
      uint64_t n = 0;
      std::string h = dkimint::bodyHash(body, bc, limit, n);
      return std::make_pair(std::move(h), n);
    };
    std::pair<std::string, uint64_t> hashed;
    if (cpu && message->size() > dkimint::kInlineHashMax)
      hashed = co_await net::offload(*cpu, std::move(work));
    else
      hashed = work();
    const auto& [bh, size] = hashed;
    if (ams->length && *ams->length > size) co_return failed(what + ": l= exceeds the body length");
    if (dkimint::decodeBase64(ams->bh) != bh) co_return failed(what + ": body hash mismatch");
    Canon hc = ams->header_relaxed ? Canon::kRelaxed : Canon::kSimple;
    std::string input = dkim::headerHashInput(m, ams->signed_headers, hc) + dkimint::signatureFieldInput(f, hc);
    if (!dkimint::verifySignature(k->key, ams->algorithm, input, ams->b))
      co_return failed(what + ": signature mismatch");
  }

  // §5.2 step 7: every AS, newest first; §5.1.1: the input is the sets 1..i in order, each
  // AAR, AMS, AS, relaxed, the AS being checked last with b= empty and no final CRLF.
  for (int i = newest; i >= 1; --i) {
    std::string what = fmt::format("AS i={}", i);
    const ArcSeal& seal = seals[static_cast<size_t>(i)];
    if (seal.algorithm == DkimAlgorithm::kRsaSha1) co_return failed(what + ": rsa-sha1 is not accepted (RFC 8301)");
    const dkimint::KeyOutcome* k = co_await cachedKey(dns, keys, seal.selector, seal.domain, seal.algorithm);
    if (k->failure != DkimResult::kNone) co_return keyFailed(what, *k);
    std::string input;
    for (int j = 1; j <= i; ++j) {
      const auto& set = sets[static_cast<size_t>(j)];
      input += dkim::canonicalHeader(*set[kAar], Canon::kRelaxed);
      input += dkim::canonicalHeader(*set[kAms], Canon::kRelaxed);
      input += j < i ? dkim::canonicalHeader(*set[kAs], Canon::kRelaxed)
                     : dkimint::signatureFieldInput(*set[kAs], Canon::kRelaxed);
    }
    if (!dkimint::verifySignature(k->key, seal.algorithm, input, seal.b)) co_return failed(what + ": signature mismatch");
  }
  v.result = ArcResult::kPass;
  co_return v;
}

}  // namespace postern::auth
