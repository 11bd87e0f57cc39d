// `postern verify --ip IP [--helo NAME] [--mail-from ADDR] [--json] [FILE|-]`: runs the
// inbound checks of [verify] (SPF, DKIM, ARC, DMARC) on one message with the [dns] servers of
// the configuration, as the SMTP server would for a client at IP, and prints the
// Authentication-Results field it would add (or, with --json, every result as one object).
// For operators asking "why did this fail?", and for the cross-checks in tests/e2e.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "auth/verifier.h"
#include "cli/commands.h"
#include "config/config.h"
#include "dns/configured.h"
#include "util/fs.h"
#include "util/time_text.h"

namespace postern::cli {
namespace {

// Lines ending in a bare LF (files written by editors and scripts) become CRLF, as they
// would be on the wire.
std::string toCrlf(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 32);
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) out += '\r';
    out += in[i];
  }
  return out;
}

nlohmann::json toJson(const auth::Report& r, const std::string& header) {
  nlohmann::json j;
  if (r.spf_checked)
    j["spf"] = {{"result", auth::spfResultName(r.spf.result)}, {"domain", r.spf.domain}, {"problem", r.spf.problem},
                {"mechanism", r.spf.mechanism}, {"explanation", r.spf.explanation}};
  if (r.dkim_checked) {
    j["dkim"] = nlohmann::json::array();
    for (const auto& d : r.dkim)
      j["dkim"].push_back({{"result", auth::dkimResultName(d.result)}, {"domain", d.domain}, {"selector", d.selector},
                           {"algorithm", d.algorithm}, {"reason", d.reason}});
  }
  if (r.dmarc_checked)
    j["dmarc"] = {{"result", auth::dmarcResultName(r.dmarc.result)}, {"policy", auth::dmarcPolicyName(r.dmarc.policy)},
                  {"disposition", auth::dmarcPolicyName(r.dmarc.disposition)}, {"header_from", r.dmarc.header_from},
                  {"spf_aligned", r.dmarc.spf_aligned}, {"dkim_aligned", r.dmarc.dkim_aligned},
                  {"reason", r.dmarc.reason}};
  if (r.arc_checked)
    j["arc"] = {{"result", auth::arcResultName(r.arc.result)}, {"instances", r.arc.instances}, {"reason", r.arc.reason}};
  j["header"] = header;
  return j;
}

}  // namespace

int runVerify(const Args& a) {
  if (a.positional.size() > 2 || a.ip.empty()) {
    std::fprintf(stderr, "usage: postern verify --ip IP [--helo NAME] [--mail-from ADDR] [--json] [FILE|-]\n");
    return 2;
  }
  auto ip = IpAddress::parse(a.ip);
  if (!ip) {
    std::fprintf(stderr, "postern: --ip: '%s' is not an IP address\n", a.ip.c_str());
    return 2;
  }
  config::LoadResult r = config::load(a.config_path);
  for (const auto& d : r.diagnostics)
    if (d.severity == config::Diagnostic::Severity::kError) std::fprintf(stderr, "%s\n", d.toString().c_str());
  if (!r.config) return 1;
  const config::Config& c = *r.config;

  std::string text;
  if (a.positional.size() < 2 || a.positional[1] == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    auto f = readFile(a.positional[1]);
    if (!f) {
      std::fprintf(stderr, "postern: %s\n", f.status().message().c_str());
      return 1;
    }
    text = std::move(f.value());
  }
  auto message = std::make_shared<const std::string>(toCrlf(text));

  auto resolver = dns::createConfigured(c.dns);
  if (!resolver) {
    std::fprintf(stderr, "postern: DNS: %s\n", resolver.status().message().c_str());
    return 1;
  }
  asio::io_context io;
  auth::Report report;
  std::string header;
  {
    auth::ResolverDns dns(**resolver);
    auth::Verifier verifier(c.verify, c.hostname, dns, nullptr);
    auth::VerifyRequest req;
    req.ip = *ip;
    req.helo = a.helo.empty() ? ip->toString() : a.helo;
    req.mail_from = a.mail_from;
    req.message = message;
    req.now = static_cast<int64_t>(nowUnixUs() / 1'000'000);
    asio::co_spawn(io, verifier.verify(req, std::nullopt), [&](std::exception_ptr e, auth::Report rep) {
      if (!e) report = std::move(rep);
    });
    io.run();
    header = verifier.header(report);
  }
  resolver->reset();   // joins the resolver thread before the io_context goes
  if (a.json) std::printf("%s\n", toJson(report, header).dump().c_str());
  else std::fwrite(header.data(), 1, header.size(), stdout);
  return 0;
}

}  // namespace postern::cli
