// DKIM tag=value lists (RFC 6376 §3.2), DKIM-Signature fields (§3.5), key records
// (§3.6.1), and the ARC fields built on them (RFC 8617 §4.1). Pure: text in, values or a
// reason out; no DNS, no clock, no cryptography (keys are checked when they are used).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "auth/dkim_tags.h"

#include "util/base64.h"
#include "util/strings.h"

namespace postern::auth {
namespace {

using TagList = std::vector<std::pair<std::string, std::string>>;


// FWS at either end removed (WSP, and CRLF when WSP follows it; parseTagList has already
// refused a CR or LF that is not part of FWS).
std::string_view trimFws(std::string_view s) {
  auto fws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && fws(s.front())) s.remove_prefix(1);
  while (!s.empty() && fws(s.back())) s.remove_suffix(1);
  return s;
}

std::string withoutFws(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (!isWsp(c) && c != '\r' && c != '\n') out += c;
  return out;
}

const std::string* find(const TagList& tags, std::string_view name) {
  for (const auto& [k, v] : tags)
    if (k == name) return &v;
  return nullptr;
}

// §3.5 b=/bh= (base64string: ALPHADIGITPS with FWS, "=" padding at the end): the value
// with FWS removed, or an error naming the tag.
Result<std::string> base64Tag(const TagList& tags, std::string_view name, bool allow_empty) {
  const std::string* v = find(tags, name);
  if (!v) return Status::invalid(fmt::format("missing required tag {}=", name));
  std::string s = withoutFws(*v);
  if (s.empty()) {
    if (allow_empty) return s;
    return Status::invalid(fmt::format("{}= is empty", name));
  }
  size_t pad = 0;
  for (char c : s) {
    bool alnum = isAlpha(c) || isDigit(c) || c == '+' || c == '/';
    if (c == '=') {
      ++pad;
    } else if (!alnum || pad > 0) {
      return Status::invalid(fmt::format("{}= is not base64", name));
    }
  }
  if (pad > 2 || s.size() % 4 != 0) return Status::invalid(fmt::format("{}= is not base64", name));
  return s;
}

// A decimal number of at most `digits` digits that fits an int64 (uint64 for l=).
template <class T>
Result<T> numberTag(std::string_view name, std::string_view v, size_t digits) {
  if (v.empty() || v.size() > digits || !std::all_of(v.begin(), v.end(), isDigit))
    return Status::invalid(fmt::format("{}= is not a number", name));
  T out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) return Status::invalid(fmt::format("{}= is too large", name));
  return out;
}

// §3.5 d= and s=: a domain name (sub-domain *("." sub-domain)), lower-cased for d=.
bool validDomain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  char prev = 0;
  for (char c : d) {
    bool ok = isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

// RFC 5322 §3.6.8 field-name: printable US-ASCII except colon.
bool validFieldName(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126 || c == ':') return false;
  return true;
}

Result<DkimAlgorithm> algorithmTag(const TagList& tags) {
  const std::string* a = find(tags, "a");
  if (!a) return Status::invalid("missing required tag a=");
  std::string v = toLower(*a);
  if (v == "rsa-sha256") return DkimAlgorithm::kRsaSha256;
  if (v == "rsa-sha1") return DkimAlgorithm::kRsaSha1;
  if (v == "ed25519-sha256") return DkimAlgorithm::kEd25519Sha256;
  return Status::invalid(fmt::format("unknown algorithm a={}", v.substr(0, 40)));
}

Result<std::string> domainTag(const TagList& tags, std::string_view name) {
  const std::string* v = find(tags, name);
  if (!v) return Status::invalid(fmt::format("missing required tag {}=", name));
  if (!validDomain(*v)) return Status::invalid(fmt::format("{}= is not a domain name", name));
  return toLower(*v);
}

Result<int> instanceTag(std::string_view v) {
  auto n = numberTag<int>("i", v, 3);
  if (!n) return n.status();
  if (*n < 1 || *n > kArcMaxInstances)
    return Status::invalid(fmt::format("i= is outside 1..{}", kArcMaxInstances));
  return *n;
}

enum class SigKind { kDkim, kArcMessage };

// §3.5 for DKIM-Signature; RFC 8617 §4.1.2 for ARC-Message-Signature (same tags, no v=,
// i= the instance).
Result<DkimSignature> parseSignature(std::string_view value, SigKind kind) {
  auto list = parseTagList(value);
  if (!list) return list.status();
  const TagList& tags = *list;
  DkimSignature sig;

  if (kind == SigKind::kDkim) {
    const std::string* v = find(tags, "v");
    if (!v) return Status::invalid("missing required tag v=");
    if (*v != "1") return Status::invalid("v= is not 1");
  } else {
    const std::string* i = find(tags, "i");
    if (!i) return Status::invalid("missing required tag i=");
    auto n = instanceTag(*i);
    if (!n) return n.status();
    sig.instance = *n;
  }
  auto a = algorithmTag(tags);
  if (!a) return a.status();
  sig.algorithm = *a;
  auto b = base64Tag(tags, "b", false);
  if (!b) return b.status();
  sig.b = std::move(*b);
  auto bh = base64Tag(tags, "bh", false);
  if (!bh) return bh.status();
  sig.bh = std::move(*bh);

  if (const std::string* c = find(tags, "c")) {
    // c= header[/body]; the body part defaults to simple.
    std::string v = toLower(*c);
    size_t slash = v.find('/');
    std::string head = v.substr(0, slash);
    std::string body = slash == std::string::npos ? "simple" : v.substr(slash + 1);
    auto canon = [](const std::string& s, bool& relaxed) {
      if (s == "simple" || s == "relaxed") {
        relaxed = s == "relaxed";
        return true;
      }
      return false;
    };
    if (!canon(head, sig.header_relaxed) || !canon(body, sig.body_relaxed))
      return Status::invalid("c= is not simple or relaxed");
  }

  auto d = domainTag(tags, "d");
  if (!d) return d.status();
  sig.domain = std::move(*d);

  const std::string* h = find(tags, "h");
  if (!h) return Status::invalid("missing required tag h=");
  bool from = false;
  for (std::string_view name : split(*h, ':')) {
    name = trimFws(name);
    if (!validFieldName(name)) return Status::invalid("h= lists an invalid field name");
    if (sig.signed_headers.size() >= kDkimMaxSignedHeaders)
      return Status::invalid(fmt::format("h= lists more than {} fields", kDkimMaxSignedHeaders));
    from = from || iequals(name, "From");
    if (kind == SigKind::kArcMessage && iequals(name, "ARC-Seal"))
      return Status::invalid("h= includes ARC-Seal");   // RFC 8617 §4.1.2
    sig.signed_headers.emplace_back(name);
  }
  // §6.1.1: a signature that does not cover From is PERMFAIL (From field not signed).
  if (kind == SigKind::kDkim && !from) return Status::invalid("h= does not include From");

  if (kind == SigKind::kDkim) {
    if (const std::string* i = find(tags, "i")) {
      // §3.5 i=: [local-part] "@" domain, the domain d= or a subdomain of it (§6.1.1:
      // otherwise PERMFAIL, domain mismatch).
      size_t at = i->rfind('@');
      if (at == std::string::npos) return Status::invalid("i= has no @");
      std::string idom = toLower(std::string_view(*i).substr(at + 1));
      bool inside = idom == sig.domain ||
                    (idom.size() > sig.domain.size() && idom.compare(idom.size() - sig.domain.size(), std::string::npos,
                                                                     sig.domain) == 0 &&
                     idom[idom.size() - sig.domain.size() - 1] == '.');
      if (!inside) return Status::invalid("i= is not in d= or a subdomain of it");
      sig.identity = *i;
    } else {
      sig.identity = "@" + sig.domain;
    }
  }

  if (const std::string* l = find(tags, "l")) {
    auto n = numberTag<uint64_t>("l", *l, kDkimMaxLengthDigits);
    if (!n) return n.status();
    sig.length = *n;
  }
  if (const std::string* q = find(tags, "q")) {
    // §3.5 q=: colon-separated methods; "dns/txt" is the only one defined.
    bool dns = false;
    for (std::string_view m : split(*q, ':')) dns = dns || iequals(trimFws(m), "dns/txt");
    if (!dns) return Status::invalid("q= does not offer dns/txt");
  }
  auto s = domainTag(tags, "s");
  if (!s) return s.status();
  sig.selector = std::move(*s);
  if (const std::string* t = find(tags, "t")) {
    auto n = numberTag<int64_t>("t", *t, kDkimMaxTimeDigits);
    if (!n) return n.status();
    sig.timestamp = *n;
  }
  if (const std::string* x = find(tags, "x")) {
    auto n = numberTag<int64_t>("x", *x, kDkimMaxTimeDigits);
    if (!n) return n.status();
    sig.expiration = *n;
    // §3.5 x=: "the value of the "x=" tag MUST be greater than the value of the "t=" tag".
    if (sig.timestamp && *sig.expiration <= *sig.timestamp) return Status::invalid("x= is not after t=");
  }
  return sig;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> parseTagList(std::string_view text) {
  // §3.2: tag-list = tag-spec *( ";" tag-spec ) [ ";" ]
  //       tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
  //       tag-name = ALPHA *ALNUMPUNC; tag-value = [ tval *( 1*(WSP / FWS) tval ) ]
  //       tval = 1*VALCHAR; VALCHAR = %x21-3A / %x3C-7E
  if (text.size() > kDkimMaxTagListBytes)
    return Status::invalid(fmt::format("tag list longer than {} bytes", kDkimMaxTagListBytes));
  // CR and LF only as FWS (CRLF followed by WSP); other controls are not allowed.
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (text[i] == '\r') {
      if (i + 2 >= text.size() || text[i + 1] != '\n' || !isWsp(text[i + 2]))
        return Status::invalid("CR or LF outside folding white space");
      ++i;
    } else if (text[i] == '\n') {
      return Status::invalid("CR or LF outside folding white space");
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Status::invalid("control character in tag list");
    }
  }
  TagList out;
  std::vector<std::string_view> specs = split(text, ';');
  for (size_t n = 0; n < specs.size(); ++n) {
    std::string_view spec = trimFws(specs[n]);
    if (spec.empty()) {
      if (n + 1 == specs.size() && n > 0) break;   // one ";" may end the list
      return Status::invalid(n == 0 && specs.size() == 1 ? "empty tag list" : "empty tag-spec");
    }
    size_t eq = spec.find('=');
    if (eq == std::string_view::npos) return Status::invalid("tag-spec without =");
    std::string_view name = trimFws(spec.substr(0, eq));
    std::string_view value = trimFws(spec.substr(eq + 1));
    if (name.empty() || !isAlpha(name[0]) ||
        !std::all_of(name.begin(), name.end(), [](char c) { return isAlpha(c) || isDigit(c) || c == '_'; }))
      return Status::invalid("invalid tag name");
    // §3.2: "Tags MUST be interpreted in a case-sensitive manner"; duplicates are an error.
    for (const auto& [k, v] : out)
      if (k == name) return Status::invalid(fmt::format("duplicate tag {}=", name.substr(0, 20)));
    if (out.size() >= kDkimMaxTags) return Status::invalid(fmt::format("more than {} tags", kDkimMaxTags));
    out.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

Result<DkimSignature> parseDkimSignature(std::string_view value) {
  return parseSignature(value, SigKind::kDkim);
}

Result<DkimSignature> parseArcMessageSignature(std::string_view value) {
  return parseSignature(value, SigKind::kArcMessage);
}

const char* dkimAlgorithmName(DkimAlgorithm a) {
  switch (a) {
    case DkimAlgorithm::kRsaSha256: return "rsa-sha256";
    case DkimAlgorithm::kRsaSha1: return "rsa-sha1";
    case DkimAlgorithm::kEd25519Sha256: return "ed25519-sha256";
  }
  return "unknown";
}

Result<DkimKey> parseDkimKey(std::string_view txt) {
  auto list = parseTagList(txt);
  if (!list) return list.status();
  const TagList& tags = *list;
  DkimKey key;
  // §3.6.1 v=: optional, but when present "DKIM1" and the first tag.
  for (size_t i = 0; i < tags.size(); ++i) {
    if (tags[i].first != "v") continue;
    if (i != 0) return Status::invalid("v= is not the first tag");
    if (tags[i].second != "DKIM1") return Status::invalid("v= is not DKIM1");
  }
  if (const std::string* k = find(tags, "k")) {
    std::string v = toLower(*k);
    if (v != "rsa" && v != "ed25519") return Status::invalid(fmt::format("unknown key type k={}", v.substr(0, 20)));
    key.key_type = v;
  }
  auto list_of = [](const std::string& v) {
    std::vector<std::string> out;
    for (std::string_view x : split(v, ':')) {
      x = trimFws(x);
      if (!x.empty()) out.push_back(toLower(x));
    }
    return out;
  };
  if (const std::string* h = find(tags, "h")) key.hashes = list_of(*h);
  if (const std::string* s = find(tags, "s")) key.services = list_of(*s);
  if (const std::string* t = find(tags, "t")) {
    for (const std::string& flag : list_of(*t)) {   // unknown flags are ignored (§3.6.1)
      key.testing = key.testing || flag == "y";
      key.strict_identity = key.strict_identity || flag == "s";
    }
  }
  // p= is required; empty means revoked (§3.6.1).
  auto p = base64Tag(tags, "p", true);
  if (!p) return p.status();
  if (!p->empty()) {
    auto raw = dkimint::decodeBase64(*p);
    if (!raw) return Status::invalid("p= is not base64");
    key.public_key = std::move(*raw);
    if (key.key_type == "ed25519" && key.public_key.size() != 32)
      return Status::invalid("p= is not a 32-byte Ed25519 key");   // RFC 8463 §4.2
  }
  return key;
}

Result<ArcSeal> parseArcSeal(std::string_view value) {
  auto list = parseTagList(value);
  if (!list) return list.status();
  const TagList& tags = *list;
  ArcSeal seal;
  const std::string* i = find(tags, "i");
  if (!i) return Status::invalid("missing required tag i=");
  auto n = instanceTag(*i);
  if (!n) return n.status();
  seal.instance = *n;
  auto a = algorithmTag(tags);
  if (!a) return a.status();
  seal.algorithm = *a;
  auto b = base64Tag(tags, "b", false);
  if (!b) return b.status();
  seal.b = std::move(*b);
  const std::string* cv = find(tags, "cv");
  if (!cv) return Status::invalid("missing required tag cv=");
  std::string v = toLower(*cv);
  if (v == "none")
    seal.cv = ArcChainStatus::kNone;
  else if (v == "pass")
    seal.cv = ArcChainStatus::kPass;
  else if (v == "fail")
    seal.cv = ArcChainStatus::kFail;
  else
    return Status::invalid("cv= is not none, pass or fail");
  auto d = domainTag(tags, "d");
  if (!d) return d.status();
  seal.domain = std::move(*d);
  auto s = domainTag(tags, "s");
  if (!s) return s.status();
  seal.selector = std::move(*s);
  if (find(tags, "h")) return Status::invalid("h= is not allowed in ARC-Seal");   // RFC 8617 §4.1.3
  if (const std::string* t = find(tags, "t")) {
    auto tn = numberTag<int64_t>("t", *t, kDkimMaxTimeDigits);
    if (!tn) return tn.status();
    seal.timestamp = *tn;
  }
  return seal;
}

Result<int> parseArcResultsInstance(std::string_view value) {
  // RFC 8617 §4.1.1: arc-info = instance [CFWS] ";" authres-payload; instance = [CFWS] "i"
  // [CFWS] "=" [CFWS] 1*2DIGIT [CFWS] (comments are not expected here and not accepted).
  size_t semi = value.find(';');
  if (semi == std::string_view::npos) return Status::invalid("no i= before the first ;");
  std::string_view inst = trimFws(value.substr(0, semi));
  if (inst.empty() || inst[0] != 'i') return Status::invalid("no i= before the first ;");
  inst = trimFws(inst.substr(1));
  if (inst.empty() || inst[0] != '=') return Status::invalid("no i= before the first ;");
  return instanceTag(trimFws(inst.substr(1)));
}

namespace dkimint {

std::optional<std::string> decodeBase64(std::string_view s) { return base64Decode(s); }

}  // namespace dkimint
}  // namespace postern::auth
