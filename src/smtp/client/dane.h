// DANE for SMTP on the client side (RFC 7672, with RFC 6698 and RFC 7671): which TLSA records
// can authenticate an MX host. Pure functions over records; the matching itself is OpenSSL's
// (SSL_dane_enable / SSL_dane_tlsa_add in client.cc).
//
// RFC 7672 §3.1: only DANE-TA(2) and DANE-EE(3) are usable for SMTP; PKIX-TA(0) and
// PKIX-EE(1) records are ignored, as are records with an unknown selector or matching type
// or a digest of the wrong length (RFC 7672 §3.1.3, RFC 6698 §2.1). When no usable record
// remains, the host is not authenticated by DANE at all (RFC 7672 §2.2: plain opportunistic TLS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dns/message.h"

namespace postern::smtp::client {

inline constexpr uint8_t kUsageDaneTa = 2;        // RFC 7218 mnemonics
inline constexpr uint8_t kUsageDaneEe = 3;
inline constexpr uint8_t kSelectorCert = 0;
inline constexpr uint8_t kSelectorSpki = 1;
inline constexpr uint8_t kMatchFull = 0;
inline constexpr uint8_t kMatchSha256 = 1;
inline constexpr uint8_t kMatchSha512 = 2;
inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kSha512Size = 64;

// True when `r` can authenticate an SMTP server (see above).
bool usableForSmtp(const dns::TlsaData& r);
// The usable records of `records`, in their order.
std::vector<dns::TlsaData> usableTlsa(const std::vector<dns::TlsaData>& records);
// "dane-ta" or "dane-ee" for a usage, for logs; "" for any other.
const char* daneUsageName(uint8_t usage);

}  // namespace postern::smtp::client
