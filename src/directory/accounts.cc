// Parser for docker-mailserver's postfix-accounts.cf (format in accounts.h).
#include "directory/accounts.h"

#include <unordered_map>

#include "util/strings.h"

namespace postern::directory {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr char kFieldSeparator = '|';

bool isControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool isDomainChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c >= 0x80;
}

Status lineError(std::string_view filename, size_t line, std::string_view message) {
  return Status::invalid(std::string(filename) + ":" + std::to_string(line) + ": error: " + std::string(message));
}

}  // namespace

std::string quoteForMessage(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t shown = text.size() > kMaxQuotedLength ? kMaxQuotedLength : text.size();
  for (size_t i = 0; i < shown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (isControl(c)) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += "...";
  return out;
}

Status checkDomain(std::string_view domain) {
  if (domain.empty()) return Status::invalid("the domain is empty");
  if (domain.front() == '[') return Status::invalid("address literals ([...]) are not supported as domains");
  size_t label = 0;
  for (unsigned char c : domain) {
    if (c == '.') {
      if (label == 0) return Status::invalid("the domain has an empty label (leading, trailing or double dot)");
      label = 0;
      continue;
    }
    if (!isDomainChar(c)) {
      std::string shown = isControl(c) ? quoteForMessage(std::string_view(reinterpret_cast<const char*>(&c), 1))
                                       : std::string(1, static_cast<char>(c));
      return Status::invalid("the domain contains '" + shown + "'");
    }
    ++label;
  }
  if (label == 0) return Status::invalid("the domain has an empty label (leading, trailing or double dot)");
  return Status::ok();
}

Status checkAddress(std::string_view address) {
  if (address.empty()) return Status::invalid("the address is empty");
  if (address.size() > kMaxAddressLength)
    return Status::invalid("the address is longer than " + std::to_string(kMaxAddressLength) + " bytes");
  for (unsigned char c : address) {
    if (isControl(c)) return Status::invalid("the address contains a control character");
    if (c == ' ') return Status::invalid("the address contains a space");
    if (c == '|' || c == ',') return Status::invalid(std::string("the address contains '") + static_cast<char>(c) + "'");
  }
  size_t at = address.find('@');
  if (at == std::string_view::npos) return Status::invalid("the address has no '@' (expected local@domain)");
  if (address.find('@', at + 1) != std::string_view::npos) return Status::invalid("the address has more than one '@'");
  std::string_view local = address.substr(0, at);
  if (local.empty()) return Status::invalid("the local part (before '@') is empty");
  size_t bad = local.find_first_of("()<>[]:;\\\"");
  if (bad != std::string_view::npos)
    return Status::invalid(std::string("the local part contains '") + local[bad] + "'");
  return checkDomain(address.substr(at + 1));
}

Result<AccountsFile> parseAccounts(std::string_view text, std::string_view filename) {
  AccountsFile out;
  std::unordered_map<std::string, size_t> first_line;   // address -> line it was defined on
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    text.remove_prefix(kUtf8Bom.size());
    out.notes.push_back({1, "UTF-8 byte order mark at the start of the file ignored"});
  }
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    std::string_view content = trim(line);
    if (content.empty() || content.front() == '#') continue;

    std::vector<std::string_view> fields = split(content, kFieldSeparator);
    if (fields.size() < 2)
      return lineError(filename, line_no, "expected ADDRESS|{SCHEME}HASH, found no '|'");
    std::string_view address = trim(fields[0]);
    if (Status st = checkAddress(address); !st)
      return lineError(filename, line_no, "invalid address '" + quoteForMessage(address) + "': " + st.message());

    std::string_view password = trim(fields[1]);
    if (password.empty()) return lineError(filename, line_no, "missing password hash after '|'");
    if (password.front() != '{')
      return lineError(filename, line_no, "password hash has no {SCHEME} prefix (expected e.g. {SHA512-CRYPT}$6$...)");
    size_t close = password.find('}');
    if (close == std::string_view::npos)
      return lineError(filename, line_no, "unterminated {SCHEME} prefix (no '}')");
    std::string_view name = password.substr(1, close - 1);
    std::optional<Scheme> scheme = schemeFromName(name);
    if (!scheme)
      return lineError(filename, line_no,
                       "unknown password scheme {" + quoteForMessage(name) + "} (supported: " +
                           std::string(supportedSchemeList()) + ")");
    std::string_view hash = password.substr(close + 1);
    if (Status st = checkHash(*scheme, hash); !st)
      return lineError(filename, line_no,
                       "malformed " + std::string(schemeName(*scheme)) + " hash for " + quoteForMessage(address) +
                           ": " + st.message());

    std::string key = toLower(address);
    auto [it, inserted] = first_line.emplace(key, line_no);
    if (!inserted)
      return lineError(filename, line_no,
                       "duplicate account " + quoteForMessage(key) + " (first defined on line " +
                           std::to_string(it->second) + ")");
    if (fields.size() > 2) {
      size_t extra = fields.size() - 2;
      out.notes.push_back({line_no, "ignoring " + std::to_string(extra) + " extra '|'-separated field" +
                                        (extra == 1 ? "" : "s") + " after the password hash of " +
                                        quoteForMessage(key)});
    }
    out.accounts.push_back(Account{std::move(key), *scheme, std::string(hash), line_no});
  }
  return out;
}

}  // namespace postern::directory
