// Sender Rewriting Scheme (Shevek, "Sender Rewriting Scheme", 2004; the scheme libsrs2 and
// postsrsd implement): the envelope sender of mail that an alias forwards off-site is
// rewritten into our own domain, so the destination's SPF check sees a domain that allows
// us, and a bounce to the rewritten address finds its way back to the original sender.
//
//   SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
//   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@srs-domain
//
// HHHH: the first kHashLength characters of base64(HMAC-SHA1(secret, data)), where data is
// the lowercased concatenation of the fields it protects (SRS0: TT, orig-domain,
// orig-local; SRS1: first-forwarder and the rest of the SRS0 local part after "SRS0").
// Hashes compare case-insensitively: relays lowercase addresses. TT: days since the epoch
// modulo kTimestampCycle, two base32 characters (RFC 4648 alphabet, case-insensitive).
//
// An SRS0 sender of another forwarder becomes SRS1 (the original SRS0 is kept, only its
// forwarder's domain is added); an SRS1 sender keeps its first forwarder and original SRS0
// part and gets our hash. Reversing SRS1 yields the first forwarder's SRS0 address, which
// that forwarder reverses in turn.
//
// Parsing is pure (parseSrsLocal); only sign/verify touch the secret. Nothing here reads
// the clock: callers pass the day number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace postern::delivery {

inline constexpr size_t kSrsHashLength = 4;           // base64 characters of HMAC-SHA1 kept
inline constexpr size_t kSrsTimestampLength = 2;      // base32 characters: 10 bits
inline constexpr uint32_t kSrsTimestampCycle = 1024;  // days before the timestamp wraps around
inline constexpr uint32_t kSrsSecondsPerDay = 86400;
inline constexpr uint32_t kSrsDefaultMaxAgeDays = 21;
inline constexpr uint32_t kSrsMaxMaxAgeDays = kSrsTimestampCycle - 1;   // older cannot be told from newer
inline constexpr size_t kSrsMaxAddressLength = 254;   // RFC 5321 §4.5.3.1.3 path minus the brackets
inline constexpr size_t kSrsMinSecretLength = 16;

// The fields of an SRS local part, as views into the parsed string.
struct SrsLocal {
  enum class Kind { kSrs0, kSrs1 };
  Kind kind = Kind::kSrs0;
  std::string_view hash;
  // SRS0 only.
  std::string_view timestamp;
  std::string_view domain;   // the original sender's domain
  std::string_view local;    // the original sender's local part (may contain '=')
  // SRS1 only.
  std::string_view forwarder;   // the first forwarder's domain
  std::string_view srs0_rest;   // the first forwarder's SRS0 local part after "SRS0" ("=HHHH=TT=d=l")
};

// Why a local part is not a usable SRS address.
enum class SrsError {
  kNotSrs,     // does not start with SRS0/SRS1 and a separator: an ordinary address
  kSyntax,     // starts like SRS but its fields are missing or malformed
  kBadHash,    // the hash does not match (forged, or made with another secret)
  kExpired,    // older than max_age
};
std::string_view srsErrorName(SrsError e);

// Parses the local part of an SRS address (the text before the last '@'). Pure: only
// looks at the bytes of `local`; the views point into it.
// SRS0: "SRS0" sep hash '=' timestamp '=' domain '=' local, sep one of "=+-", hash of
// kSrsHashLength base64 characters, timestamp of kSrsTimestampLength base32 characters,
// domain and local non-empty (local may contain '=').
// SRS1: "SRS1" sep hash '=' forwarder '=' rest, rest non-empty and starting with a separator.
// The tag compares case-insensitively.
struct SrsParse {
  std::optional<SrsLocal> value;   // set when ok
  SrsError error = SrsError::kNotSrs;
  std::string reason;              // when not ok: precise, for the 550 reply
};
SrsParse parseSrsLocal(std::string_view local);

// Days since the epoch modulo kSrsTimestampCycle, in base32 (RFC 4648 alphabet).
std::string srsTimestamp(uint64_t days_since_epoch);
// Decodes a timestamp written by srsTimestamp (either case); nullopt when malformed.
std::optional<uint32_t> decodeSrsTimestamp(std::string_view tt);
// Whether a message stamped `stamp` is at most `max_age_days` old on day `today` (days since
// the epoch). A stamp "in the future" is taken to be from the previous cycle (the spec's
// wrap-around rule), so it is old, not new.
bool srsTimestampFresh(uint32_t stamp, uint64_t today, uint32_t max_age_days);

class Srs {
 public:
  // REQUIRES: secret.size() >= kSrsMinSecretLength, domain non-empty, max_age_days in
  // [1, kSrsMaxMaxAgeDays].
  Srs(std::string secret, std::string domain, uint32_t max_age_days);

  const std::string& domain() const { return domain_; }

  // The rewritten sender for `sender` (local@domain) on day `today`, or nullopt when it
  // must go unchanged: the null sender, no '@', a quoted or empty local part, an address
  // already in our SRS domain, or a result longer than kSrsMaxAddressLength.
  std::optional<std::string> forward(std::string_view sender, uint64_t today) const;

  struct Reversed {
    std::string address;   // SRS0: the original sender; SRS1: the first forwarder's SRS0 address
    SrsLocal::Kind kind;
  };
  // Decodes and checks an address rewritten by forward(). The domain after the last '@'
  // must be ours (case-insensitive), else kNotSrs.
  struct ReverseResult {
    std::optional<Reversed> value;
    SrsError error = SrsError::kNotSrs;
    std::string reason;
  };
  ReverseResult reverse(std::string_view address, uint64_t today) const;

  // The hash of the lowercased concatenation of `parts` (exposed for tests).
  std::string hash(std::initializer_list<std::string_view> parts) const;

 private:
  bool hashMatches(std::string_view given, std::initializer_list<std::string_view> parts) const;

  std::string secret_;
  std::string domain_;
  uint32_t max_age_days_;
};

}  // namespace postern::delivery
