#include "tls/traefik_acme.h"

#include "util/base64.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace postern::tls {
namespace {

using json = nlohmann::json;

// A string member under either spelling (v2+ lower case, v1 capitalised); null if absent.
const json* member(const json& obj, const char* lower, const char* upper) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(lower);
  if (it != obj.end()) return &*it;
  it = obj.find(upper);
  return it != obj.end() ? &*it : nullptr;
}

void readCertificates(const json& list, const std::string& resolver, AcmeFile& out) {
  std::string where = resolver.empty() ? std::string("Certificates") : "resolver " + resolver;
  if (list.is_null()) return;   // Traefik writes null before its first certificate
  if (!list.is_array()) {
    out.problems.push_back(where + ": Certificates is not a list");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    auto skip = [&](std::string_view why) { out.problems.push_back(fmt::format("{}, entry {}: {}", where, i + 1, why)); };
    const json* domain = member(e, "domain", "Domain");
    const json* cert = member(e, "certificate", "Certificate");
    const json* key = member(e, "key", "Key");
    if (!cert || !cert->is_string() || !key || !key->is_string()) {
      skip("no certificate or key");
      continue;
    }
    AcmeEntry entry;
    entry.resolver = resolver;
    entry.index = i + 1;
    if (domain) {
      if (const json* m = member(*domain, "main", "Main"); m && m->is_string()) entry.main = m->get<std::string>();
      if (const json* s = member(*domain, "sans", "SANs"); s && s->is_array())
        for (const auto& n : *s)
          if (n.is_string()) entry.sans.push_back(n.get<std::string>());
    }
    if (!decodeBase64(cert->get_ref<const std::string&>(), entry.cert_pem)) {
      skip("the certificate is not base64");
      continue;
    }
    if (!decodeBase64(key->get_ref<const std::string&>(), entry.key_pem)) {
      skip("the key is not base64");
      continue;
    }
    out.entries.push_back(std::move(entry));
  }
}

}  // namespace

bool decodeBase64(std::string_view in, std::string& out) {
  // acme.json may wrap its base64 (PEM-like line breaks): white space is dropped first.
  std::string compact;
  compact.reserve(in.size());
  for (char c : in)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact += c;
  auto decoded = base64Decode(compact);
  out = decoded ? std::move(*decoded) : std::string();
  return decoded.has_value();
}

Result<AcmeFile> parseTraefikAcme(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::invalid("not valid JSON");
  if (!doc.is_object()) return Status::invalid("not a Traefik ACME file (the top level is not an object)");
  AcmeFile out;
  if (doc.contains("Account") || doc.contains("Certificates")) {   // v1: one unnamed resolver
    out.resolvers.push_back("");
    readCertificates(doc.contains("Certificates") ? doc["Certificates"] : json(), "", out);
    return out;
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (!it.value().is_object() || (!it.value().contains("Account") && !it.value().contains("Certificates")))
      return Status::invalid(fmt::format("not a Traefik ACME file ('{}' is not a certificate resolver)", it.key()));
    out.resolvers.push_back(it.key());
    const json& r = it.value();
    readCertificates(r.contains("Certificates") ? r["Certificates"] : json(), it.key(), out);
  }
  return out;
}

}  // namespace postern::tls
