// Times as text, in UTC: the RFC 5322 §3.3 date of mail headers and ISO 8601 for people.
#pragma once

#include <cstdint>
#include <string>

namespace postern {

// "Wed, 02 Dec 2026 03:18:06 +0000" for microseconds since the epoch.
std::string rfc5322Date(uint64_t unix_us);
// "2026-12-02T03:18:06Z".
std::string isoUtc(uint64_t unix_us);
// Microseconds since the epoch, now (system clock).
uint64_t nowUnixUs();

}  // namespace postern
