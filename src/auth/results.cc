// The Authentication-Results field Postern adds (RFC 8601 §2.2 grammar): one resinfo per
// method, each on its own folded line, values quoted unless they are tokens or addresses.
#include <string>
#include <string_view>
#include <vector>

#include "auth/results.h"

namespace postern::auth {
namespace {

// RFC 2045 §5.1 tspecials: not allowed in a token.
constexpr std::string_view kTspecials = "()<>@,;:\\\"/[]?=";

bool isToken(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || kTspecials.find(c) != std::string_view::npos) return false;
  }
  return true;
}

// RFC 5322 §3.2.3 atext.
bool isAtext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool isDotAtom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
  for (char c : s)
    if (c != '.' && !isAtext(c)) return false;
  return true;
}

// RFC 6376 domain-name as RFC 8601 pvalue uses it: letters, digits, hyphens; no empty label.
bool isDomainName(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string_view clip(std::string_view v) { return v.substr(0, kArMaxValueOctets); }

// RFC 5322 quoted-string: '"' and '\' escaped; control characters (CR and LF above all) never
// reach the header: they become '?'. Octets over 127 stay (RFC 6532).
std::string quoted(std::string_view v) {
  std::string out = "\"";
  for (char c : clip(v)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// RFC 8601 §2.2 pvalue: value (token / quoted-string) or [[local-part] "@"] domain-name.
std::string pvalue(std::string_view v) {
  v = clip(v);
  if (isToken(v)) return std::string(v);
  size_t at = v.rfind('@');
  if (at != std::string_view::npos && isDomainName(v.substr(at + 1)) && (at == 0 || isDotAtom(v.substr(0, at))))
    return std::string(v);
  return quoted(v);
}

// Words of one resinfo, folded onto continuation lines when a line would pass kArFoldAt.
class Writer {
 public:
  explicit Writer(std::string_view authserv_id) {
    out_ = "Authentication-Results: " + pvalue(authserv_id) + ";";
  }
  void method(std::string word) {
    if (methods_++ > 0) out_ += ";";
    out_ += "\r\n\t";
    line_ = 1;
    put(word, true);
  }
  void word(std::string w) { put(w, false); }
  void property(std::string_view name, std::string_view value) { word(std::string(name) + "=" + pvalue(value)); }
  void reason(std::string_view r) {
    if (!r.empty()) word("reason=" + quoted(r));
  }
  std::string finish() {
    if (methods_ == 0) out_ += " none";
    out_ += "\r\n";
    return std::move(out_);
  }

 private:
  void put(const std::string& w, bool first) {
    if (!first) {
      if (line_ + 1 + w.size() > kArFoldAt) {
        out_ += "\r\n\t";
        line_ = 1;
      } else {
        out_ += ' ';
        ++line_;
      }
    }
    out_ += w;
    line_ += w.size();
  }
  std::string out_;
  size_t line_ = 0;
  size_t methods_ = 0;
};

}  // namespace

std::string authenticationResults(std::string_view authserv_id, const Report& r) {
  Writer w(authserv_id);
  if (r.spf_checked) {
    w.method(std::string("spf=") + spfResultName(r.spf.result));
    // resinfo (§2.2): methodspec, then reasonspec, then the properties.
    w.reason(r.spf.problem);
    if (!r.mail_from.empty())
      w.property("smtp.mailfrom", r.mail_from);
    else if (!r.helo.empty())
      w.property("smtp.helo", r.helo);
  }
  if (r.spf_helo_checked) {
    w.method(std::string("spf=") + spfResultName(r.spf_helo.result));
    w.reason(r.spf_helo.problem);
    w.property("smtp.helo", r.helo);
  }
  if (r.dkim_checked) {
    if (r.dkim.empty()) w.method("dkim=none");
    for (const DkimVerdict& d : r.dkim) {
      w.method(std::string("dkim=") + dkimResultName(d.result));
      if (d.result != DkimResult::kPass) w.reason(d.reason);
      if (!d.domain.empty()) w.property("header.d", d.domain);
      if (!d.selector.empty()) w.property("header.s", d.selector);
      if (!d.b_prefix.empty()) w.property("header.b", d.b_prefix.substr(0, 8));   // RFC 6008 §4
    }
  }
  if (r.dmarc_checked) {
    const DmarcVerdict& d = r.dmarc;
    w.method(std::string("dmarc=") + dmarcResultName(d.result));
    if (d.result == DmarcResult::kPass || d.result == DmarcResult::kFail)
      w.word(std::string("(p=") + dmarcPolicyName(d.policy) + " dis=" + dmarcPolicyName(d.disposition) + ")");
    w.reason(d.reason);
    if (!d.header_from.empty()) w.property("header.from", d.header_from);
  }
  if (r.arc_checked) {
    w.method(std::string("arc=") + arcResultName(r.arc.result));
    if (r.arc.result == ArcResult::kFail) w.reason(r.arc.reason);
  }
  return w.finish();
}

}  // namespace postern::auth
