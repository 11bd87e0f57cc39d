// Sender Rewriting Scheme: see srs.h for the address forms and the spec they follow.
#include "delivery/srs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <fmt/format.h>

#include "util/strings.h"

namespace postern::delivery {

namespace {

constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint32_t kBase32Bits = 5;
constexpr uint32_t kBase32Mask = 31;
constexpr std::string_view kSeparators = "=+-";   // what may follow the SRS0/SRS1 tag
constexpr size_t kTagLength = 4;                  // "SRS0", "SRS1"
constexpr size_t kSha1Length = 20;
constexpr size_t kBase64OfSha1 = 28;              // 4 * ceil(20 / 3)

bool isSeparator(char c) { return kSeparators.find(c) != std::string_view::npos; }

bool isBase64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// Bytes that never belong in an unquoted address field.
bool badAddressByte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f || c == '@' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ',' ||
         c == ';' || c == ':' || c == '(' || c == ')' || c == '[' || c == ']';
}

// A domain inside an SRS local part: non-empty, no '=', nothing that is not part of a name.
bool plausibleDomain(std::string_view d) {
  if (d.empty()) return false;
  for (char c : d)
    if (badAddressByte(c) || c == '=') return false;
  return true;
}

bool plausibleLocal(std::string_view l) {
  if (l.empty()) return false;
  for (char c : l)
    if (badAddressByte(c)) return false;
  return true;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

SrsParse failure(SrsError e, std::string reason) {
  SrsParse p;
  p.error = e;
  p.reason = std::move(reason);
  return p;
}

// The SRS0 fields after the tag's separator: hash '=' timestamp '=' domain '=' local.
// Fills `out`; returns the reason when malformed, empty when fine.
std::string parseSrs0Fields(std::string_view s, SrsLocal& out) {
  size_t e1 = s.find('=');
  if (e1 == std::string_view::npos) return "SRS0 address without a timestamp";
  size_t e2 = s.find('=', e1 + 1);
  if (e2 == std::string_view::npos) return "SRS0 address without the original domain";
  size_t e3 = s.find('=', e2 + 1);
  if (e3 == std::string_view::npos) return "SRS0 address without the original local part";
  out.hash = s.substr(0, e1);
  out.timestamp = s.substr(e1 + 1, e2 - e1 - 1);
  out.domain = s.substr(e2 + 1, e3 - e2 - 1);
  out.local = s.substr(e3 + 1);
  if (out.hash.size() != kSrsHashLength || !std::all_of(out.hash.begin(), out.hash.end(), isBase64))
    return fmt::format("SRS0 hash must be {} base64 characters", kSrsHashLength);
  if (!decodeSrsTimestamp(out.timestamp))
    return fmt::format("SRS0 timestamp must be {} base32 characters", kSrsTimestampLength);
  if (!plausibleDomain(out.domain)) return "SRS0 address with an empty or malformed original domain";
  if (!plausibleLocal(out.local)) return "SRS0 address with an empty or malformed original local part";
  return {};
}

}  // namespace

std::string_view srsErrorName(SrsError e) {
  switch (e) {
    case SrsError::kNotSrs: return "not_srs";
    case SrsError::kSyntax: return "syntax";
    case SrsError::kBadHash: return "bad_hash";
    case SrsError::kExpired: return "expired";
  }
  return "?";
}

SrsParse parseSrsLocal(std::string_view local) {
  if (local.size() <= kTagLength || !isSeparator(local[kTagLength])) return failure(SrsError::kNotSrs, "not an SRS address");
  std::string_view tag = local.substr(0, kTagLength);
  SrsLocal v;
  if (equalsNoCase(tag, "SRS0")) {
    v.kind = SrsLocal::Kind::kSrs0;
    if (std::string why = parseSrs0Fields(local.substr(kTagLength + 1), v); !why.empty())
      return failure(SrsError::kSyntax, std::move(why));
  } else if (equalsNoCase(tag, "SRS1")) {
    v.kind = SrsLocal::Kind::kSrs1;
    std::string_view s = local.substr(kTagLength + 1);
    size_t e1 = s.find('=');
    if (e1 == std::string_view::npos) return failure(SrsError::kSyntax, "SRS1 address without the first forwarder");
    size_t e2 = s.find('=', e1 + 1);
    if (e2 == std::string_view::npos) return failure(SrsError::kSyntax, "SRS1 address without the SRS0 part");
    v.hash = s.substr(0, e1);
    v.forwarder = s.substr(e1 + 1, e2 - e1 - 1);
    v.srs0_rest = s.substr(e2 + 1);
    if (v.hash.size() != kSrsHashLength || !std::all_of(v.hash.begin(), v.hash.end(), isBase64))
      return failure(SrsError::kSyntax, fmt::format("SRS1 hash must be {} base64 characters", kSrsHashLength));
    if (!plausibleDomain(v.forwarder))
      return failure(SrsError::kSyntax, "SRS1 address with an empty or malformed forwarder domain");
    // The first forwarder's SRS0 part, from its separator on: it must itself be well formed.
    SrsLocal inner;
    if (v.srs0_rest.empty() || !isSeparator(v.srs0_rest[0]) ||
        !parseSrs0Fields(v.srs0_rest.substr(1), inner).empty())
      return failure(SrsError::kSyntax, "SRS1 address whose SRS0 part is malformed");
  } else {
    return failure(SrsError::kNotSrs, "not an SRS address");
  }
  SrsParse p;
  p.value = v;
  return p;
}

std::string srsTimestamp(uint64_t days_since_epoch) {
  auto t = static_cast<uint32_t>(days_since_epoch % kSrsTimestampCycle);
  std::string out(kSrsTimestampLength, 'A');
  for (size_t i = kSrsTimestampLength; i-- > 0;) {
    out[i] = kBase32[t & kBase32Mask];
    t >>= kBase32Bits;
  }
  return out;
}

std::optional<uint32_t> decodeSrsTimestamp(std::string_view tt) {
  if (tt.size() != kSrsTimestampLength) return std::nullopt;
  uint32_t t = 0;
  for (char c : tt) {
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    size_t at = kBase32.find(u);
    if (at == std::string_view::npos) return std::nullopt;
    t = (t << kBase32Bits) | static_cast<uint32_t>(at);
  }
  return t;
}

bool srsTimestampFresh(uint32_t stamp, uint64_t today, uint32_t max_age_days) {
  uint64_t now = today % kSrsTimestampCycle;
  // A stamp ahead of today was made in the previous cycle.
  if (now < stamp) now += kSrsTimestampCycle;
  return now <= uint64_t(stamp) + max_age_days;
}

Srs::Srs(std::string secret, std::string domain, uint32_t max_age_days)
    : secret_(std::move(secret)), domain_(toLower(domain)), max_age_days_(max_age_days) {
  assert(secret_.size() >= kSrsMinSecretLength);
  assert(!domain_.empty());
  assert(max_age_days_ >= 1 && max_age_days_ <= kSrsMaxMaxAgeDays);
}

std::string Srs::hash(std::initializer_list<std::string_view> parts) const {
  std::string data;
  for (std::string_view p : parts) data += p;
  data = toLower(data);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret_.data(), static_cast<int>(secret_.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &mac_len);
  assert(mac_len == kSha1Length);
  unsigned char b64[kBase64OfSha1 + 1];
  EVP_EncodeBlock(b64, mac, static_cast<int>(mac_len));
  return std::string(reinterpret_cast<const char*>(b64), kSrsHashLength);
}

bool Srs::hashMatches(std::string_view given, std::initializer_list<std::string_view> parts) const {
  // Case-insensitive: a relay on the way back may have changed the case of the address.
  return equalsNoCase(given, hash(parts));
}

std::optional<std::string> Srs::forward(std::string_view sender, uint64_t today) const {
  size_t at = sender.rfind('@');
  if (sender.empty() || at == std::string_view::npos || at == 0) return std::nullopt;
  std::string_view local = sender.substr(0, at);
  std::string_view domain = sender.substr(at + 1);
  if (!plausibleLocal(local) || !plausibleDomain(domain) || domain.front() == '[') return std::nullopt;
  if (equalsNoCase(domain, domain_)) return std::nullopt;   // already ours
  std::string out;
  SrsParse p = parseSrsLocal(local);
  if (p.value && p.value->kind == SrsLocal::Kind::kSrs0) {
    // Another forwarder's SRS0: keep it whole, note its domain (SRS1).
    std::string_view rest = local.substr(kTagLength);
    out = fmt::format("SRS1={}={}={}@{}", hash({domain, rest}), domain, rest, domain_);
  } else if (p.value) {
    // Already SRS1: keep the first forwarder and its SRS0 part, sign them ourselves.
    const SrsLocal& v = *p.value;
    out = fmt::format("SRS1={}={}={}@{}", hash({v.forwarder, v.srs0_rest}), v.forwarder, v.srs0_rest, domain_);
  } else {
    std::string tt = srsTimestamp(today);
    out = fmt::format("SRS0={}={}={}={}@{}", hash({tt, domain, local}), tt, domain, local, domain_);
  }
  if (out.size() > kSrsMaxAddressLength) return std::nullopt;
  return out;
}

Srs::ReverseResult Srs::reverse(std::string_view address, uint64_t today) const {
  ReverseResult r;
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || !equalsNoCase(address.substr(at + 1), domain_)) {
    r.reason = "not an address in the SRS domain";
    return r;
  }
  SrsParse p = parseSrsLocal(address.substr(0, at));
  if (!p.value) {
    r.error = p.error;
    r.reason = std::move(p.reason);
    return r;
  }
  if (address.size() > kSrsMaxAddressLength) {
    r.error = SrsError::kSyntax;
    r.reason = fmt::format("SRS address longer than {} characters", kSrsMaxAddressLength);
    return r;
  }
  const SrsLocal& v = *p.value;
  if (v.kind == SrsLocal::Kind::kSrs0) {
    if (!hashMatches(v.hash, {v.timestamp, v.domain, v.local})) {
      r.error = SrsError::kBadHash;
      r.reason = "SRS hash does not match (forged or damaged address)";
      return r;
    }
    if (!srsTimestampFresh(*decodeSrsTimestamp(v.timestamp), today, max_age_days_)) {
      r.error = SrsError::kExpired;
      r.reason = fmt::format("SRS address expired (older than {} days)", max_age_days_);
      return r;
    }
    r.value = Reversed{fmt::format("{}@{}", v.local, v.domain), v.kind};
  } else {
    // The first forwarder checks the age of its own SRS0 part.
    if (!hashMatches(v.hash, {v.forwarder, v.srs0_rest})) {
      r.error = SrsError::kBadHash;
      r.reason = "SRS hash does not match (forged or damaged address)";
      return r;
    }
    r.value = Reversed{fmt::format("SRS0{}@{}", v.srs0_rest, v.forwarder), v.kind};
  }
  return r;
}

}  // namespace postern::delivery
