// RFC 8461 §3.3 (policy fetch), §5 (policy discovery and cache), §4.1 (MX matching): see
// mta_sts.h.
#include "delivery/mta_sts.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>
#include <asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "log/log.h"
#include "net/stream.h"
#include "util/fs.h"

namespace postern::delivery {

using namespace asio::experimental::awaitable_operators;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;

namespace {

// After the fetch deadline, how long a stuck TLS stream gets before its socket is closed.
constexpr std::chrono::seconds kWatchdogGrace{2};
// A caller joining another's fetch waits at most this many fetch timeouts (the address
// lookup comes before the fetch's own deadline starts).
constexpr int kJoinWait = 2;
// One read from the policy server.
constexpr size_t kReadChunk = 16 * 1024;
constexpr int kCacheFormatVersion = 1;

std::optional<StsMode> modeFromName(std::string_view s) {
  if (s == "enforce") return StsMode::kEnforce;
  if (s == "testing") return StsMode::kTesting;
  if (s == "none") return StsMode::kNone;
  return std::nullopt;
}

// What a failed lookup says, for the error text. (Spelled out here rather than through
// dns::outcomeName so this module links without the resolver's implementation.)
std::string lookupError(dns::Outcome o, const std::string& error) {
  if (!error.empty()) return error;
  switch (o) {
    case dns::Outcome::kOk: return "no records";
    case dns::Outcome::kNxDomain: return "no such domain";
    case dns::Outcome::kNoData: return "no records";
    case dns::Outcome::kTempFail: return "temporary failure";
    case dns::Outcome::kPermFail: return "permanent failure";
  }
  return "failed";
}

Policy fromCached(const CachedPolicy& c, std::string error) {
  Policy p;
  p.mode = c.policy.mode;
  p.mx = c.policy.mx;
  p.id = c.id;
  p.max_age = c.policy.max_age;
  p.source = PolicySource::kCache;
  p.error = std::move(error);
  return p;
}

Policy fetchedPolicy(const std::string& id, const StsPolicyText& text) {
  Policy p;
  p.mode = text.mode;
  p.mx = text.mx;
  p.id = id;
  p.max_age = text.max_age;
  p.source = PolicySource::kFetched;
  return p;
}

Policy noPolicy(std::string error) {
  Policy p;
  p.error = std::move(error);
  return p;
}

}  // namespace

const char* policySourceName(PolicySource s) {
  switch (s) {
    case PolicySource::kNone: return "none";
    case PolicySource::kCache: return "cache";
    case PolicySource::kFetched: return "fetched";
  }
  return "none";
}

bool mxAllowed(const Policy& p, std::string_view mx_host) {
  if (p.source == PolicySource::kNone || p.mode == StsMode::kNone) return true;
  return stsMxMatchesAny(p.mx, mx_host);
}

// ---- cache file -----------------------------------------------------------------------------

std::string formatStsCache(const std::vector<CachedPolicy>& entries) {
  json list = json::array();
  for (const auto& e : entries) {
    list.push_back(
        {{"domain", e.domain},
         {"id", e.id},
         {"mode", stsModeName(e.policy.mode)},
         {"mx", e.policy.mx},
         {"max_age", e.policy.max_age},
         {"fetched", std::chrono::duration_cast<std::chrono::seconds>(e.fetched.time_since_epoch()).count()}});
  }
  json doc = {{"version", kCacheFormatVersion}, {"policies", std::move(list)}};
  return doc.dump(1) + "\n";
}

Result<std::vector<CachedPolicy>> parseStsCache(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Status::corruption("not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != kCacheFormatVersion)
    return Status::corruption(fmt::format("version is not {}", kCacheFormatVersion));
  auto policies = doc.find("policies");
  if (policies == doc.end() || !policies->is_array()) return Status::corruption("no policies array");
  std::vector<CachedPolicy> out;
  size_t index = 0;
  for (const auto& e : *policies) {
    auto bad = [&](std::string_view what) { return Status::corruption(fmt::format("policy {}: {}", index, what)); };
    if (!e.is_object()) return bad("not an object");
    auto str = [&](const char* key) -> const std::string* {
      auto it = e.find(key);
      return it != e.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
    };
    CachedPolicy c;
    const std::string* domain = str("domain");
    if (!domain || normalizeDomain(*domain) != *domain) return bad("bad domain");
    c.domain = *domain;
    const std::string* id = str("id");
    if (!id || id->empty() || id->size() > kStsMaxIdLength) return bad("bad id");
    c.id = *id;
    const std::string* mode = str("mode");
    auto m = mode ? modeFromName(*mode) : std::nullopt;
    if (!m) return bad("bad mode");
    c.policy.mode = *m;
    auto mx = e.find("mx");
    if (mx == e.end() || !mx->is_array() || mx->size() > kStsMaxMxPatterns) return bad("bad mx");
    for (const auto& p : *mx) {
      if (!p.is_string()) return bad("bad mx");
      const auto& s = p.get_ref<const std::string&>();
      const bool wildcard = s.starts_with("*.");
      if (normalizeDomain(wildcard ? s.substr(2) : s) != (wildcard ? s.substr(2) : s)) return bad("bad mx");
      c.policy.mx.push_back(s);
    }
    auto max_age = e.find("max_age");
    if (max_age == e.end() || !max_age->is_number_unsigned() || max_age->get<uint64_t>() > kStsMaxAge)
      return bad("bad max_age");
    c.policy.max_age = max_age->get<uint32_t>();
    auto fetched = e.find("fetched");
    if (fetched == e.end() || !fetched->is_number_integer()) return bad("bad fetched");
    c.fetched = SysClock::time_point(std::chrono::seconds(fetched->get<int64_t>()));
    out.push_back(std::move(c));
    ++index;
  }
  return out;
}

// ---- MtaSts ---------------------------------------------------------------------------------

MtaSts::MtaSts(MtaStsOptions options) : options_(std::move(options)) {}

MtaSts::~MtaSts() {
  if (tls_) SSL_CTX_free(tls_);
}

Result<std::unique_ptr<MtaSts>> MtaSts::create(MtaStsOptions options) {
  if (!options.txt || !options.addresses) return Status::invalid("MTA-STS needs a TXT and an address lookup");
  std::unique_ptr<MtaSts> m(new MtaSts(std::move(options)));
  m->tls_ = SSL_CTX_new(TLS_client_method());
  if (!m->tls_) return Status::io("SSL_CTX_new: " + net::lastTlsError());
  SSL_CTX_set_min_proto_version(m->tls_, TLS1_2_VERSION);
  // The certificate must chain to a trusted root and name mta-sts.<domain> (§3.3); the name
  // is set per connection (Stream::connectTls calls SSL_set1_host with the SNI name).
  SSL_CTX_set_verify(m->tls_, SSL_VERIFY_PEER, nullptr);
  if (m->options_.system_trust && SSL_CTX_set_default_verify_paths(m->tls_) != 1)
    return Status::io("cannot load the system's CA certificates: " + net::lastTlsError());
  if (!m->options_.ca_file.empty() && SSL_CTX_load_verify_locations(m->tls_, m->options_.ca_file.c_str(), nullptr) != 1)
    return Status::invalid(fmt::format("CA file '{}': {}", m->options_.ca_file, net::lastTlsError()));
  ERR_clear_error();

  const std::string& file = m->options_.cache_file;
  if (const FileStamp stamp = fileStamp(file); !file.empty() && stamp.exists) {
    auto text = stamp.size > int64_t(kStsMaxCacheFileBytes)
                    ? Result<std::string>(Status::invalid(fmt::format("over {} bytes", kStsMaxCacheFileBytes)))
                    : readFile(file);
    auto entries = text ? parseStsCache(*text) : Result<std::vector<CachedPolicy>>(text.status());
    if (!entries) {
      // Losing the cache costs refetches, not mail: start empty rather than refuse to run.
      m->count("mta_sts.cache_unreadable");
      log::warn("mta_sts.cache_unreadable").kv("file", file).kv("error", entries.status().message());
    } else {
      const auto now = m->now();
      for (auto& e : *entries)
        if (now < e.expires()) m->cache_[e.domain] = std::move(e);
    }
  }
  return m;
}

SysClock::time_point MtaSts::now() const {
  return options_.now ? options_.now() : SysClock::now();
}

std::optional<CachedPolicy> MtaSts::cached(const std::string& domain) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(domain);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

size_t MtaSts::cacheSize() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

void MtaSts::store(CachedPolicy entry) {
  std::string text;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    cache_[entry.domain] = std::move(entry);
    if (cache_.size() > options_.max_entries) {
      const auto now = this->now();
      std::erase_if(cache_, [&](const auto& kv) { return !(now < kv.second.expires()); });
      while (cache_.size() > options_.max_entries) {
        auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
          return a.second.fetched < b.second.fetched;
        });
        cache_.erase(oldest);
      }
    }
    if (options_.cache_file.empty()) return;
    text = snapshotLocked();
    generation = ++generation_;
  }
  persistSoon(std::move(text), generation);
}

void MtaSts::forget(const std::string& domain) {
  std::string text;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (cache_.erase(domain) == 0 || options_.cache_file.empty()) return;
    text = snapshotLocked();
    generation = ++generation_;
  }
  persistSoon(std::move(text), generation);
}

// The write goes to options_.offload when there is one: policyFor runs on an event loop.
void MtaSts::persistSoon(std::string text, uint64_t generation) {
  if (!options_.offload) {
    persist(text, generation);
    return;
  }
  options_.offload([this, text = std::move(text), generation] { persist(text, generation); });
}

std::string MtaSts::snapshotLocked() const {
  std::vector<CachedPolicy> entries;
  entries.reserve(cache_.size());
  for (const auto& [domain, e] : cache_) entries.push_back(e);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.domain < b.domain; });
  return formatStsCache(entries);
}

void MtaSts::persist(const std::string& text, uint64_t generation) {
  // The file is written outside mu_ so lookups on other threads do not wait for the fsync;
  // file_mu_ and the generation keep an older snapshot from overwriting a newer one.
  std::lock_guard lock(file_mu_);
  if (generation <= written_generation_) return;
  if (Status s = replaceFileDurably(options_.cache_file, text); !s) {
    count("mta_sts.cache_write_failed");
    log::warn("mta_sts.cache_write_failed").kv("file", options_.cache_file).kv("error", s.message());
    return;
  }
  written_generation_ = generation;
}

void MtaSts::finishFetch(const std::string& domain, std::optional<StsPolicyText> policy, std::string error) {
  std::vector<std::shared_ptr<asio::steady_timer>> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(domain);
    if (it == inflight_.end()) return;
    Inflight& f = *it->second;
    f.done = true;
    f.policy = std::move(policy);
    f.error = std::move(error);
    waiters = std::move(f.waiters);
    inflight_.erase(it);
  }
  // Each waiter's timer is cancelled on its own executor (timers are not thread-safe).
  for (auto& w : waiters) asio::post(w->get_executor(), [w] { w->cancel(); });
}

net::awaitable<Policy> MtaSts::policyFor(std::string domain) {
  auto ex = co_await asio::this_coro::executor;
  const std::string d = normalizeDomain(domain);
  if (d.empty()) co_return noPolicy("not a domain name");

  const std::string txt_name = "_mta-sts." + d;
  const dns::TxtAnswer txt = co_await options_.txt(txt_name);

  std::optional<CachedPolicy> have = cached(d);
  if (have && !(now() < have->expires())) {
    forget(d);  // an expired policy no longer applies (§5.1)
    have.reset();
  }
  auto keepOrNone = [&](std::string why) {
    return have ? fromCached(*have, std::move(why)) : noPolicy(std::move(why));
  };

  // §5: a missing record does not end an unexpired cached policy (a domain opts out by
  // publishing mode "none" first, §8.3); a failed lookup keeps it too.
  if (txt.outcome == dns::Outcome::kNxDomain || txt.outcome == dns::Outcome::kNoData) co_return keepOrNone("");
  if (txt.outcome != dns::Outcome::kOk)
    co_return keepOrNone(fmt::format("TXT lookup of {} failed: {}", txt_name, lookupError(txt.outcome, txt.error)));
  const StsRecord record = selectStsRecord(txt.records);
  if (record.kind == StsRecord::Kind::kNone) co_return keepOrNone("");
  if (record.kind == StsRecord::Kind::kInvalid) {
    count("mta_sts.record_invalid");
    log::warn("mta_sts.record_invalid").kv("domain", d).kv("error", record.error);
    co_return keepOrNone("invalid TXT record: " + record.error);
  }
  if (have && have->id == record.id) co_return fromCached(*have, "");

  // One fetch per domain at a time: a caller arriving while one runs waits for its result
  // instead of fetching again (a queue run starts many deliveries to one domain at once).
  std::shared_ptr<Inflight> joined;
  std::shared_ptr<asio::steady_timer> wake;
  std::optional<Policy> ready;
  {
    std::lock_guard lock(mu_);
    auto c = cache_.find(d);
    if (c != cache_.end() && c->second.id == record.id && now() < c->second.expires()) {
      ready = fromCached(c->second, "");  // a fetch finished since `have` was read
    } else if (auto it = inflight_.find(d); it != inflight_.end()) {
      joined = it->second;
      wake = std::make_shared<asio::steady_timer>(ex);
      wake->expires_after(kJoinWait * options_.fetch_timeout + kWatchdogGrace);
      joined->waiters.push_back(wake);
    } else {
      inflight_.emplace(d, std::make_shared<Inflight>());
    }
  }
  if (ready) co_return std::move(*ready);
  if (joined) {
    co_await wake->async_wait(net::use_nothrow);
    {
      std::lock_guard lock(mu_);
      if (!joined->done)
        ready = keepOrNone("timed out waiting for a concurrent policy fetch");
      else if (!joined->policy)
        ready = keepOrNone("policy fetch failed: " + joined->error);
      else
        ready = fetchedPolicy(record.id, *joined->policy);
    }
    co_return std::move(*ready);
  }
  struct Finish {  // completes the in-flight entry however the fetch ends
    MtaSts& m;
    const std::string& domain;
    bool done = false;
    ~Finish() {
      if (!done) m.finishFetch(domain, std::nullopt, "interrupted");
    }
  } finish{*this, d};

  Result<StsPolicyText> fetched = co_await fetch(d);
  finish.done = true;
  finishFetch(d, fetched ? std::optional<StsPolicyText>(*fetched) : std::nullopt,
              fetched ? std::string() : fetched.status().message());
  if (!fetched) {
    const std::string why = "policy fetch failed: " + fetched.status().message();
    count("mta_sts.fetch_failed");
    log::warn("mta_sts.fetch_failed")
        .kv("domain", d)
        .kv("id", record.id)
        .kv("error", fetched.status().message())
        .kv("kept_cached", have.has_value());
    if (have) count("mta_sts.stale_kept");
    co_return keepOrNone(why);
  }
  count("mta_sts.fetched");
  log::info("mta_sts.fetched")
      .kv("domain", d)
      .kv("id", record.id)
      .kv("mode", stsModeName(fetched->mode))
      .kv("max_age", uint64_t{fetched->max_age});
  CachedPolicy entry{d, record.id, *fetched, now()};
  Policy p = fetchedPolicy(record.id, entry.policy);
  // max_age 0: valid for this delivery only, nothing to keep.
  if (entry.policy.max_age > 0)
    store(std::move(entry));
  else if (have)
    forget(d);
  co_return p;
}

net::awaitable<Result<StsPolicyText>> MtaSts::fetch(std::string domain) {
  const std::string host = "mta-sts." + domain;
  const dns::AddressAnswer answer = co_await options_.addresses(host);
  if (answer.outcome != dns::Outcome::kOk || answer.addresses.empty())
    co_return Status::notFound(fmt::format("no address for {}: {}", host, lookupError(answer.outcome, answer.error)));
  const auto deadline = std::chrono::steady_clock::now() + options_.fetch_timeout;
  std::string failures;
  for (const IpAddress& a : answer.addresses) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    FetchAttempt attempt = co_await fetchFrom(host, a, deadline);
    // A server that answered has given its answer; only an unreachable one is skipped.
    if (attempt.result || attempt.answered) co_return std::move(attempt.result);
    if (!failures.empty()) failures += "; ";
    failures += attempt.result.status().message();
  }
  if (failures.empty()) failures = fmt::format("timed out after {} ms", options_.fetch_timeout.count());
  co_return Status::io(std::move(failures));
}

net::awaitable<MtaSts::FetchAttempt> MtaSts::fetchFrom(const std::string& host, const IpAddress& address,
                                                       std::chrono::steady_clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  const net::tcp::endpoint ep(asio::ip::make_address(address.toString()), options_.port);
  const std::string where = fmt::format("{}[{}]:{}", host, address.toString(), options_.port);
  FetchAttempt attempt{Status::io(fmt::format("{}: timed out", where)), false};

  net::tcp::socket socket(ex);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  auto connected = co_await (socket.async_connect(ep, net::use_nothrow) || timer.async_wait(net::use_nothrow));
  if (connected.index() == 1) {
    attempt.result = Status::io(fmt::format("{}: connect timed out", where));
    co_return attempt;
  }
  if (auto [ec] = std::get<0>(connected); ec) {
    attempt.result = Status::io(fmt::format("{}: connect: {}", where, ec.message()));
    co_return attempt;
  }

  net::Stream stream(std::move(socket));
  stream.setDeadlineAt(deadline);
  co_await (exchange(stream, host, where, attempt) || stream.runWatchdog(kWatchdogGrace));
  stream.close();
  co_return attempt;
}

net::awaitable<void> MtaSts::exchange(net::Stream& stream, const std::string& host, const std::string& where,
                                      FetchAttempt& attempt) {
  struct StopWatchdog {
    net::Stream& s;
    ~StopWatchdog() { s.stopWatchdog(); }
  } stop{stream};

  std::string reason;
  const bool up = co_await stream.connectTls(tls_, host, reason);
  if (!up) {
    // With SSL_VERIFY_PEER a certificate that does not verify (or does not name the host)
    // fails the handshake; OpenSSL's verify result says which check failed.
    const long verify = stream.ssl() ? SSL_get_verify_result(stream.ssl()) : X509_V_OK;
    ERR_clear_error();
    if (stream.expired())
      reason = "timed out";
    else if (verify != X509_V_OK)
      reason = fmt::format("certificate: {}", X509_verify_cert_error_string(verify));
    attempt.result = Status::io(fmt::format("{}: TLS handshake: {}", where, reason));
    co_return;
  }
  if (SSL_get0_peer_certificate(stream.ssl()) == nullptr || SSL_get_verify_result(stream.ssl()) != X509_V_OK) {
    attempt.result = Status::io(fmt::format("{}: certificate not verified", where));
    co_return;
  }
  attempt.answered = true;  // from here on the verified server speaks for the domain

  const std::string request = stsPolicyRequest(host);
  if (auto ec = co_await stream.writeAll(request); ec) {
    attempt.result = Status::io(fmt::format("{}: sending the request: {}", where, ec.message()));
    co_return;
  }
  std::string buf;
  std::vector<char> chunk(kReadChunk);
  for (;;) {
    auto [ec, n] = co_await stream.readSome(chunk.data(), chunk.size());
    buf.append(chunk.data(), n);
    if (ec && stream.expired()) {
      attempt.result = Status::io(fmt::format("{}: timed out reading the response", where));
      co_return;
    }
    // Servers often close without a TLS close_notify: any end of the stream counts as its end.
    // A response cut short still fails to parse (Content-Length, chunking, policy syntax).
    StsHttpParse parsed = parseStsHttpResponse(buf, /*eof=*/static_cast<bool>(ec));
    if (parsed.state == StsHttpParse::State::kNeedMore) continue;
    if (parsed.state == StsHttpParse::State::kError) {
      attempt.result = Status::invalid(fmt::format("{}: {}", where, parsed.error));
      co_return;
    }
    auto body = checkStsHttpResponse(parsed.response);
    if (!body) {
      attempt.result = Status::invalid(fmt::format("{}: {}", where, body.status().message()));
      co_return;
    }
    auto policy = parseStsPolicy(*body);
    if (!policy) {
      attempt.result = Status::invalid(fmt::format("{}: policy: {}", where, policy.status().message()));
      co_return;
    }
    attempt.result = std::move(policy);
    co_return;
  }
}

}  // namespace postern::delivery
