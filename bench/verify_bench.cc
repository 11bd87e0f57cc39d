// Microbenchmark of inbound sender authentication (auth::Verifier, [verify]) for one
// DKIM-signed 4 KiB message, the DNS answers coming from memory (auth::StaticDns: the cost of
// a warm resolver cache is not in these figures; the `make bench` "verify" rows include it).
//
// One iteration is what the SMTP session does per message (smtp/server/verify.cc): SPF for
// MAIL FROM, DKIM, ARC and DMARC (Verifier::verify), the Authentication-Results field
// (Verifier::header) and the message copied with that field on top (auth::withResults).
// All iterations of a run go through one coroutine on one io_context, so neither an
// io_context nor a co_spawn per message is counted.
//
//   BM_VerifyDkimSigned4K/ed25519:0/pool:0   rsa-sha256 (2048 bits); hashing and signature check on the calling thread
//   BM_VerifyDkimSigned4K/ed25519:0/pool:1   the same on a 1-thread cpu pool, as the server runs it
//                                            (adds two thread hand-offs per message; real time
//                                            and process CPU time are both reported)
//   ed25519:1: the same with an ed25519-sha256 signature.
// BM_VerifyOff4K is the same loop with every check turned off (the header and the copy
// remain): the floor the figures above are compared against. BM_VerifyOnly4K turns on one
// check at a time (rsa-2048 signature, inline), to show where the time goes.
// BM_OpensslVerify is the signature check alone through OpenSSL, with the public key decoded
// from its DNS form for every message (as auth/dkim_verify.cc did before its key cache) or once.
#include <benchmark/benchmark.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <asio/thread_pool.hpp>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "auth/dns.h"
#include "auth/verifier.h"
#include "config/config.h"
#include "dkim/signer.h"
#include "net/asio.h"

namespace {

using namespace postern;

constexpr const char* kSenderDomain = "sender.test";
constexpr const char* kSelector = "bench";
constexpr int64_t kNow = 1767225600;   // 2026-01-01, the message's Date
constexpr size_t kMessageSize = 4096;  // before the DKIM-Signature field

// The load generator's message shape (bench/loadgen): a few header fields, then 76-letter lines.
std::string makeMessage() {
  std::string m = fmt::format(
      "From: <sender@{0}>\r\nTo: <bench@example.test>\r\nSubject: postern-bench\r\n"
      "Message-ID: <bench@{0}>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n",
      kSenderDomain);
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t i = 0;
  while (m.size() + 2 < kMessageSize) {
    size_t n = std::min<size_t>(76, kMessageSize - m.size() - 2);
    for (size_t k = 0; k < n; ++k) m.push_back(kAlphabet[(i + k) % (sizeof kAlphabet - 1)]);
    m += "\r\n";
    ++i;
  }
  return m;
}

struct Fixture {
  auth::StaticDns dns;
  std::shared_ptr<const std::string> message;
};

// A new key of `type`, its record in `dns`, and the message signed with it. Aborts the run
// (with the reason) when signing fails: a benchmark of an unsigned message would be wrong.
bool prepare(Fixture& f, dkim::KeyType type, benchmark::State& state) {
  auto key = dkim::generateKey(type, 2048);
  if (!key) {
    state.SkipWithError(("key: " + key.status().message()).c_str());
    return false;
  }
  key->domain = kSenderDomain;
  key->selector = kSelector;
  auto txt = dkim::dnsTxtValue(*key);
  std::string body = makeMessage();
  auto field = dkim::signMessage(body, *key, kNow);
  if (!txt || !field) {
    state.SkipWithError("could not sign the message");
    return false;
  }
  f.message = std::make_shared<const std::string>(*field + body);
  f.dns.txt_records[kSenderDomain] = {"v=spf1 ip4:127.0.0.1 -all"};
  f.dns.txt_records[fmt::format("{}._domainkey.{}", kSelector, kSenderDomain)] = {*txt};
  f.dns.txt_records[fmt::format("_dmarc.{}", kSenderDomain)] = {"v=DMARC1; p=none"};
  return true;
}

net::awaitable<void> loop(benchmark::State& state, auth::Verifier& v, const Fixture& f, bool& failed) {
  const auto ip = *IpAddress::parse("127.0.0.1");
  size_t bytes = 0;
  for (auto _ : state) {
    auth::VerifyRequest req;
    req.ip = ip;
    req.helo = "bench.example.test";
    req.mail_from = fmt::format("sender@{}", kSenderDomain);
    req.message = f.message;
    req.now = kNow;
    auth::Report r = co_await v.verify(std::move(req), std::nullopt);
    std::string out = auth::withResults(*f.message, v.config().authserv_id, v.header(r));
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    // Not a timed assertion: a run whose signature does not verify is reported as an error,
    // since its figures would not be those of a DKIM-signed message. (Main's placeholder
    // verifier returns no DKIM result at all; that is allowed so the plumbing can be run.)
    if (v.config().dkim && !r.dkim.empty() && r.dkim.front().result != auth::DkimResult::kPass) failed = true;
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void run(benchmark::State& state, config::Verify cfg, dkim::KeyType type, bool pool) {
  Fixture f;
  if (!prepare(f, type, state)) return;
  cfg.authserv_id = "mx.bench.test";
  std::unique_ptr<asio::thread_pool> cpu;
  if (pool) cpu = std::make_unique<asio::thread_pool>(1);
  auth::Verifier v(cfg, "mx.bench.test", f.dns, cpu.get());
  asio::io_context io;
  bool failed = false;
  std::exception_ptr error;
  asio::co_spawn(io, loop(state, v, f, failed), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (cpu) cpu->join();
  if (error)
    state.SkipWithError("exception in the verifier");
  else if (failed)
    state.SkipWithError("the DKIM signature did not verify");
  state.counters["msg_bytes"] = static_cast<double>(f.message->size());
}

void BM_VerifyDkimSigned4K(benchmark::State& state) {
  const auto type = state.range(0) == 0 ? dkim::KeyType::kRsa : dkim::KeyType::kEd25519;
  run(state, config::Verify{}, type, state.range(1) != 0);
}
BENCHMARK(BM_VerifyDkimSigned4K)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"ed25519", "pool"})
    ->MeasureProcessCPUTime()
    ->UseRealTime();

void BM_VerifyOff4K(benchmark::State& state) {
  config::Verify cfg;
  cfg.spf = cfg.dkim = cfg.dmarc = cfg.arc = false;
  run(state, cfg, dkim::KeyType::kEd25519, false);
}
BENCHMARK(BM_VerifyOff4K)->MeasureProcessCPUTime()->UseRealTime();

void BM_VerifyOnly4K(benchmark::State& state) {
  config::Verify cfg;
  cfg.spf = state.range(0) == 0;
  cfg.dkim = state.range(0) == 1;
  cfg.arc = state.range(0) == 2;
  cfg.dmarc = state.range(0) == 3;
  state.SetLabel(cfg.spf ? "spf" : cfg.dkim ? "dkim" : cfg.arc ? "arc" : "dmarc");
  run(state, cfg, dkim::KeyType::kRsa, false);
}
BENCHMARK(BM_VerifyOnly4K)->DenseRange(0, 3)->ArgName("check")->MeasureProcessCPUTime()->UseRealTime();

// The RSA or Ed25519 signature check of a 300-byte header hash input, OpenSSL alone.
void BM_OpensslVerify(benchmark::State& state) {
  const bool ed = state.range(0) != 0, fresh = state.range(1) != 0;
  auto key = dkim::generateKey(ed ? dkim::KeyType::kEd25519 : dkim::KeyType::kRsa, 2048);
  if (!key) {
    state.SkipWithError("key");
    return;
  }
  const std::string input(300, 'h');
  // The signature, and the public key in the form DNS carries it (DER SubjectPublicKeyInfo; raw for Ed25519).
  std::string sig(512, '\0');
  size_t sig_len = sig.size();
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  EVP_DigestSignInit(c, nullptr, ed ? nullptr : EVP_sha256(), nullptr, key->pkey.get());
  EVP_DigestSign(c, reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(c);
  sig.resize(sig_len);
  std::string pub;
  if (ed) {
    size_t n = 32;
    pub.resize(n);
    EVP_PKEY_get_raw_public_key(key->pkey.get(), reinterpret_cast<unsigned char*>(pub.data()), &n);
  } else {
    unsigned char* der = nullptr;
    int n = i2d_PUBKEY(key->pkey.get(), &der);
    pub.assign(reinterpret_cast<char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
  }
  auto decode = [&]() -> EVP_PKEY* {
    const auto* in = reinterpret_cast<const unsigned char*>(pub.data());
    return ed ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, in, pub.size())
              : d2i_PUBKEY(nullptr, &in, static_cast<long>(pub.size()));
  };
  EVP_PKEY* cached = decode();
  bool ok = true;
  for (auto _ : state) {
    EVP_PKEY* k = fresh ? decode() : cached;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ok &= EVP_DigestVerifyInit(ctx, nullptr, ed ? nullptr : EVP_sha256(), nullptr, k) == 1 &&
          EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (fresh) EVP_PKEY_free(k);
  }
  EVP_PKEY_free(cached);
  if (!ok) state.SkipWithError("the signature did not verify");
}
BENCHMARK(BM_OpensslVerify)->ArgsProduct({{0, 1}, {1, 0}})->ArgNames({"ed25519", "decode_each"});

}  // namespace
