// Authentication-Results (RFC 8601): building the one header field Postern adds, and finding
// the fields a message brought along that claim our authserv-id (§5: they are removed).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/arc.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/results_fields.h"
#include "auth/spf.h"

namespace postern::auth {

inline constexpr size_t kArMaxLineOctets = 998;   // RFC 5322 §2.1.1: no line longer (without CRLF)
inline constexpr size_t kArFoldAt = 78;           // RFC 5322 §2.1.1: lines SHOULD stay within 78
inline constexpr size_t kArMaxValueOctets = 400;  // longer property values and reasons are cut

struct Report {
  bool spf_checked = false;
  SpfOutcome spf;                 // MAIL FROM (or HELO identity when MAIL FROM was empty)
  bool spf_helo_checked = false;  // the HELO identity as well (RFC 7208 §2.3), when MAIL FROM was not empty
  SpfOutcome spf_helo;
  std::string mail_from;          // for smtp.mailfrom
  std::string helo;               // for smtp.helo
  bool dkim_checked = false;
  std::vector<DkimVerdict> dkim;
  bool dmarc_checked = false;
  DmarcVerdict dmarc;
  bool arc_checked = false;
  ArcVerdict arc;
};

// "Authentication-Results: <authserv_id>;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n\tdkim=... ;
// dmarc=... header.from=...;\r\n\tarc=...\r\n", folded, with its final CRLF. Property values
// that are not RFC 8601 tokens are quoted; reasons go in reason="..." (§2.7).
std::string authenticationResults(std::string_view authserv_id, const Report& r);

// ownResultsFields(): auth/results_fields.h.

}  // namespace postern::auth
