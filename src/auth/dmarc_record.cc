// DMARC record parsing, RFC 7489 §6.3 (tags) and §6.4 (formal definition), and the names of
// policies and results. Pure: no DNS, no libpsl (compiled into the fuzz build).
#include <optional>
#include <string>
#include <string_view>

#include "auth/dmarc_record.h"
#include "util/strings.h"

namespace postern::auth {
namespace {


std::string_view trimWsp(std::string_view s) {
  while (!s.empty() && isWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWsp(s.back())) s.remove_suffix(1);
  return s;
}


// One "tag=value" of the list (§6.4: *WSP around "=" and ";").
struct Tag {
  std::string_view name, value;
};

std::optional<Tag> splitTag(std::string_view part) {
  size_t eq = part.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  Tag t{trimWsp(part.substr(0, eq)), trimWsp(part.substr(eq + 1))};
  if (t.name.empty()) return std::nullopt;
  return t;
}

// dmarc-request / dmarc-srequest (§6.4): "none" / "quarantine" / "reject"; ABNF quoted
// strings are case-insensitive (RFC 5234 §2.3).
std::optional<DmarcPolicy> policyValue(std::string_view v) {
  if (iequals(v, "none")) return DmarcPolicy::kNone;
  if (iequals(v, "quarantine")) return DmarcPolicy::kQuarantine;
  if (iequals(v, "reject")) return DmarcPolicy::kReject;
  return std::nullopt;
}

// dmarc-uri (§6.4): an RFC 3986 URI (scheme ":" hier-part, checked loosely: a scheme, then a
// non-empty rest without blanks or commas) with an optional "!" size limit (1*DIGIT and an
// optional k/m/g/t unit). Enough to tell "syntactically valid" for §6.6.3 step 6.
bool validDmarcUri(std::string_view u) {
  size_t bang = u.rfind('!');
  if (bang != std::string_view::npos) {
    std::string_view size = u.substr(bang + 1);
    if (!size.empty() && std::string_view("kmgtKMGT").find(size.back()) != std::string_view::npos)
      size.remove_suffix(1);
    if (size.empty()) return false;
    for (char c : size)
      if (!isDigit(c)) return false;
    u = u.substr(0, bang);
  }
  size_t colon = u.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == u.size()) return false;
  if (!isAlpha(u[0])) return false;
  for (char c : u.substr(0, colon))
    if (!isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.') return false;
  for (char c : u)
    if (static_cast<unsigned char>(c) <= ' ' || c == ',' || c == 0x7f) return false;
  return true;
}

// dmarc-auri / dmarc-furi: comma-separated URIs; the syntactically valid ones, up to kDmarcMaxUris.
std::vector<std::string> uriList(std::string_view v) {
  std::vector<std::string> out;
  for (std::string_view u : split(v, ',')) {
    u = trimWsp(u);
    if (validDmarcUri(u) && out.size() < kDmarcMaxUris) out.emplace_back(u);
  }
  return out;
}

// The version tag (§6.3 "v": MUST be first; the value "DMARC1" matches precisely, as the
// %x44.4d.41.52.43.31 of §6.4 says).
bool versionTag(std::string_view part) {
  auto t = splitTag(trimWsp(part));
  return t && (t->name == "v" || t->name == "V") && t->value == "DMARC1";
}

}  // namespace

const char* dmarcPolicyName(DmarcPolicy p) {
  switch (p) {
    case DmarcPolicy::kNone: return "none";
    case DmarcPolicy::kQuarantine: return "quarantine";
    case DmarcPolicy::kReject: return "reject";
  }
  return "none";
}

// RFC 7489 §11.2 / RFC 8601 §2.7 result names.
const char* dmarcResultName(DmarcResult r) {
  switch (r) {
    case DmarcResult::kNone: return "none";
    case DmarcResult::kPass: return "pass";
    case DmarcResult::kFail: return "fail";
    case DmarcResult::kTempError: return "temperror";
    case DmarcResult::kPermError: return "permerror";
  }
  return "none";
}

bool isDmarcRecord(std::string_view text) {
  if (text.size() > kDmarcMaxRecordBytes) text = text.substr(0, kDmarcMaxRecordBytes);
  return versionTag(text.substr(0, text.find(';')));
}

Result<DmarcRecord> parseDmarcRecord(std::string_view text) {
  if (text.size() > kDmarcMaxRecordBytes) return Status::invalid("record longer than 4096 octets");
  std::vector<std::string_view> parts = split(text, ';');
  if (parts.empty() || !versionTag(parts[0])) return Status::invalid("does not start with v=DMARC1");

  DmarcRecord rec;
  bool have_p = false, sp_invalid = false, have_rua = false;
  std::string p_problem = "p= missing";
  std::string sp_problem;
  bool seen_sp = false, seen_adkim = false, seen_aspf = false, seen_pct = false, seen_ruf = false;
  size_t tags_seen = 0;   // non-empty tags after v=
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view part = trimWsp(parts[i]);
    if (part.empty()) continue;   // "v=DMARC1; p=none;" (the trailing dmarc-sep)
    ++tags_seen;
    auto tag = splitTag(part);
    // §6.3: syntax errors in the remainder are discarded in favour of the defaults.
    if (!tag) continue;
    std::string name = toLower(tag->name);
    std::string_view v = tag->value;
    if (name == "p") {
      // §6.4: dmarc-request directly follows dmarc-version ("v" and "p" MUST appear in that
      // order, the other components in any order after them).
      if (tags_seen != 1) {
        p_problem = "p= is not the second tag";
        continue;
      }
      if (auto pol = policyValue(v)) {
        rec.p = *pol;
        have_p = true;
      } else {
        p_problem = "p=: unknown policy '" + std::string(v.substr(0, 32)) + "'";
      }
    } else if (name == "sp") {
      if (seen_sp) continue;   // the first occurrence counts
      seen_sp = true;
      if (auto pol = policyValue(v)) {
        rec.sp = *pol;
      } else {
        sp_invalid = true;
        sp_problem = "sp=: unknown policy '" + std::string(v.substr(0, 32)) + "'";
      }
    } else if (name == "adkim" || name == "aspf") {
      bool& seen = name == "adkim" ? seen_adkim : seen_aspf;
      if (seen) continue;
      seen = true;
      bool& strict = name == "adkim" ? rec.adkim_strict : rec.aspf_strict;
      if (iequals(v, "s")) strict = true;
      // "r" is the default; anything else is a syntax error left at the default (§6.3).
    } else if (name == "pct") {
      if (seen_pct) continue;
      seen_pct = true;
      // 1*3DIGIT, 0..100 (§6.3); otherwise the default 100.
      if (v.size() <= 3)
        if (auto n = parseDecimal(v, 100)) rec.pct = static_cast<unsigned>(*n);
    } else if (name == "rua") {
      if (have_rua) continue;
      have_rua = true;
      rec.rua = uriList(v);
    } else if (name == "ruf") {
      if (seen_ruf) continue;
      seen_ruf = true;
      rec.ruf = uriList(v);
    }
    // fo=, rf=, ri= are about reports, which Postern does not send; unknown tags MUST be
    // ignored (§6.3).
  }

  if (!have_p || sp_invalid) {
    // §6.6.3 step 6: a record without a valid p= (or with an invalid sp=) still counts as
    // "p=none" when rua= names at least one syntactically valid URI; otherwise DMARC does
    // not apply.
    if (rec.rua.empty()) return Status::invalid((have_p ? sp_problem : p_problem) + " and no valid rua=");
    rec.p = DmarcPolicy::kNone;
    rec.sp.reset();
  }
  return rec;
}

}  // namespace postern::auth
