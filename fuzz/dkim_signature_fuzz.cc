// libFuzzer target for the DKIM and ARC tag parsers (auth/dkim_tags.h):
// parseTagList, parseDkimSignature, parseArcMessageSignature, parseArcSeal,
// parseArcResultsInstance and parseDkimKey over the same input, as a DKIM-Signature field
// value or a DNS TXT record hands it in from anyone. Seeds: fuzz/corpus/dkim_signature/.
//
// Besides crashes and sanitizer reports, it checks:
// - tag lists: at most kDkimMaxTags tags, names unique, non-empty, starting with a letter;
//   no value starts or ends with white space; errors carry a reason;
// - signatures: an accepted one has a non-empty lower-case d=, a non-empty s=, b= and bh=
//   without white space and a multiple of 4 long, h= with From (DKIM) and at most
//   kDkimMaxSignedHeaders names, x= after t=, an i= ending in d= (or a subdomain);
//   ARC instances within 1..kArcMaxInstances;
// - keys: an Ed25519 key is 32 bytes or empty (revoked); k= is rsa or ed25519.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "auth/dkim_tags.h"

namespace {

using namespace postern::auth;

void check(bool ok) {
  if (!ok) std::abort();
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool lower(const std::string& s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return false;
  return true;
}

void base64Shape(const std::string& s) {
  check(!s.empty() && s.size() % 4 == 0);
  for (char c : s) check(!isSpace(c));
}

void signatureShape(const DkimSignature& s, bool dkim) {
  check(!s.domain.empty() && lower(s.domain));
  check(!s.selector.empty());
  base64Shape(s.b);
  base64Shape(s.bh);
  check(!s.signed_headers.empty() && s.signed_headers.size() <= kDkimMaxSignedHeaders);
  if (s.timestamp && s.expiration) check(*s.expiration > *s.timestamp);
  if (dkim) {
    bool from = false;
    for (const auto& h : s.signed_headers) {
      std::string l = h;
      for (char& c : l) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      from = from || l == "from";
    }
    check(from);
    size_t at = s.identity.rfind('@');
    check(at != std::string::npos);
    check(s.identity.size() - at - 1 >= s.domain.size());
  } else {
    check(s.instance >= 1 && s.instance <= kArcMaxInstances);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto tags = parseTagList(in);
  if (tags) {
    check(tags->size() <= kDkimMaxTags);
    std::set<std::string> names;
    for (const auto& [k, v] : *tags) {
      check(!k.empty() && ((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')));
      check(names.insert(k).second);
      if (!v.empty()) check(!isSpace(v.front()) && !isSpace(v.back()));
    }
  } else {
    check(!tags.status().message().empty());
  }

  auto sig = parseDkimSignature(in);
  if (sig) signatureShape(*sig, true);
  else check(!sig.status().message().empty());
  auto ams = parseArcMessageSignature(in);
  if (ams) signatureShape(*ams, false);

  auto seal = parseArcSeal(in);
  if (seal) {
    check(seal->instance >= 1 && seal->instance <= kArcMaxInstances);
    check(!seal->domain.empty() && lower(seal->domain));
    base64Shape(seal->b);
  }
  auto aar = parseArcResultsInstance(in);
  if (aar) check(*aar >= 1 && *aar <= kArcMaxInstances);

  auto key = parseDkimKey(in);
  if (key) {
    check(key->key_type == "rsa" || key->key_type == "ed25519");
    if (key->key_type == "ed25519") check(key->public_key.empty() || key->public_key.size() == 32);
  } else {
    check(!key.status().message().empty());
  }
  // Tag lists from parsers that accepted must have parsed as tag lists too.
  if (sig || ams || seal || key) check(tags.isOk());
  return 0;
}
