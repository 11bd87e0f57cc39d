#include "smtp/client/dane.h"

namespace postern::smtp::client {

bool usableForSmtp(const dns::TlsaData& r) {
  if (r.usage != kUsageDaneTa && r.usage != kUsageDaneEe) return false;
  if (r.selector != kSelectorCert && r.selector != kSelectorSpki) return false;
  switch (r.matching_type) {
    case kMatchFull: return !r.data.empty();
    case kMatchSha256: return r.data.size() == kSha256Size;
    case kMatchSha512: return r.data.size() == kSha512Size;
    default: return false;
  }
}

std::vector<dns::TlsaData> usableTlsa(const std::vector<dns::TlsaData>& records) {
  std::vector<dns::TlsaData> out;
  for (const auto& r : records)
    if (usableForSmtp(r)) out.push_back(r);
  return out;
}

const char* daneUsageName(uint8_t usage) {
  if (usage == kUsageDaneTa) return "dane-ta";
  if (usage == kUsageDaneEe) return "dane-ee";
  return "";
}

}  // namespace postern::smtp::client
