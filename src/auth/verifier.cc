#include "auth/verifier.h"

#include <random>

#include "delivery/route.h"
#include "dkim/canon.h"
#include "util/strings.h"

namespace postern::auth {
namespace {

uint32_t pctRoll() {
  thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<uint32_t>(rng() % 100);
}

}  // namespace

Verifier::Verifier(const config::Verify& cfg, std::string receiver_hostname, Dns& dns, asio::thread_pool* cpu)
    : cfg_(cfg), receiver_(std::move(receiver_hostname)), dns_(dns), cpu_(cpu) {}

net::awaitable<SpfOutcome> Verifier::spf(IpAddress ip, std::string helo, std::string mail_from, int64_t now) {
  SpfRequest req;
  req.ip = ip;
  req.helo = helo;
  req.receiver = receiver_;
  req.now = now;
  // RFC 7208 §2.4: MAIL FROM; a null reverse-path is checked as postmaster@HELO (§2.3, §4.3).
  std::string domain = delivery::domainOf(mail_from);
  if (mail_from.empty() || domain.empty()) {
    req.sender = "postmaster@" + helo;
    domain = toLower(helo);
  } else {
    req.sender = std::move(mail_from);
  }
  co_return co_await checkHost(dns_, std::move(req), std::move(domain));
}

net::awaitable<Report> Verifier::verify(VerifyRequest req, std::optional<SpfOutcome> spf_done) {
  Report r;
  r.mail_from = req.mail_from;
  r.helo = req.helo;
  if (cfg_.spf) {
    r.spf_checked = true;
    // (No co_await inside ?: — g++ 12 miscompiles that in coroutines.)
    if (spf_done) r.spf = std::move(*spf_done);
    else r.spf = co_await spf(req.ip, req.helo, req.mail_from, req.now);
    // RFC 7208 §2.3: the HELO identity too, when it is a domain name (not an address
    // literal) and MAIL FROM was not already checked as postmaster@HELO.
    if (!req.mail_from.empty() && isValidSpfDomain(req.helo) && req.helo.find('.') != std::string::npos) {
      SpfRequest h;
      h.ip = req.ip;
      h.helo = req.helo;
      h.sender = "postmaster@" + req.helo;
      h.receiver = receiver_;
      h.now = req.now;
      r.spf_helo = co_await checkHost(dns_, std::move(h), toLower(req.helo));
      r.spf_helo_checked = true;
    }
  }
  if (cfg_.dkim) {
    r.dkim_checked = true;
    DkimVerifyOptions o;
    o.max_signatures = cfg_.dkim_max_signatures;
    o.honour_length = cfg_.dkim_honour_length;
    o.now = req.now;
    r.dkim = co_await verifyDkim(dns_, req.message, o, cpu_);
  }
  if (cfg_.arc) {
    r.arc_checked = true;
    r.arc = co_await verifyArc(dns_, req.message, req.now, cpu_);
  }
  if (cfg_.dmarc) {
    r.dmarc_checked = true;
    DmarcInput in;
    if (auto parts = dkim::splitMessage(*req.message)) {
      if (auto from = dkim::fromDomain(*parts)) in.header_from = *from;
    }
    in.spf = r.spf.result;
    // RFC 7489 §3.1.2 / RFC 7208 §2.3: the SPF-authenticated domain is the MAIL FROM domain,
    // or the HELO name for a null reverse-path.
    in.spf_domain = r.spf.domain;
    in.dkim = r.dkim;
    in.pct_roll = pctRoll();
    if (in.header_from.empty()) {
      r.dmarc.result = DmarcResult::kNone;
      r.dmarc.reason = "no single From domain";
    } else {
      r.dmarc = co_await checkDmarc(dns_, std::move(in));
    }
  }
  co_return r;
}

std::string Verifier::header(const Report& r) const { return authenticationResults(cfg_.authserv_id, r); }

void putResults(std::string& message, std::string_view authserv_id, std::string_view field) {
  auto own = ownResultsFields(message, authserv_id);
  for (auto it = own.rbegin(); it != own.rend(); ++it) message.erase(it->first, it->second - it->first);
  message.insert(0, field);
}

std::string withResults(std::string_view message, std::string_view authserv_id, std::string_view field) {
  std::string out;
  out.reserve(message.size() + field.size());
  out.append(message);
  putResults(out, authserv_id, field);
  return out;
}

}  // namespace postern::auth
