// Parser for docker-mailserver's dovecot-quotas.cf (format in quotas.h).
#include "directory/quotas.h"

#include <unordered_map>

#include "directory/accounts.h"
#include "util/strings.h"

namespace postern::directory {
namespace {

Status lineError(std::string_view filename, size_t line, std::string_view message) {
  return Status::invalid(std::string(filename) + ":" + std::to_string(line) + ": error: " + std::string(message));
}

}  // namespace

std::optional<uint64_t> parseQuotaSize(std::string_view text) {
  text = trim(text);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  auto number = parseDecimal(text.substr(0, digits), kMaxQuotaBytes);
  if (!number) return std::nullopt;
  std::string_view unit = trim(text.substr(digits));
  unsigned shift = 0;
  if (unit.size() > 1) return std::nullopt;
  if (unit.size() == 1) {
    switch (unit[0]) {
      case 'b': case 'B': shift = 0; break;
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: return std::nullopt;
    }
  }
  if (*number > (kMaxQuotaBytes >> shift)) return std::nullopt;
  return *number << shift;
}

Result<QuotasFile> parseQuotas(std::string_view text, std::string_view filename) {
  QuotasFile out;
  std::unordered_map<std::string, size_t> first_line;   // address -> line it was set on
  for (const TextLine& l : splitLines(text)) {
    const size_t line_no = l.number;
    std::string_view content = trim(l.text);
    if (content.empty() || content.front() == '#') continue;
    if (content.size() > kMaxQuotaLineLength)
      return lineError(filename, line_no, "line longer than " + std::to_string(kMaxQuotaLineLength) + " bytes");

    // The address cannot contain ':' (checkAddress), so the last one separates the size.
    size_t colon = content.rfind(':');
    if (colon == std::string_view::npos)
      return lineError(filename, line_no, "expected ADDRESS:SIZE such as user@example.com:50M, found no ':'");
    std::string_view address = trim(content.substr(0, colon));
    if (Status st = checkAddress(address); !st)
      return lineError(filename, line_no, "invalid address '" + quoteForMessage(address) + "': " + st.message());
    std::string_view size = trim(content.substr(colon + 1));
    auto bytes = parseQuotaSize(size);
    if (!bytes)
      return lineError(filename, line_no,
                       "bad size '" + quoteForMessage(size) +
                           "' (expected bytes or a number with B, k, M, G or T such as 50M; 0 means no limit)");
    std::string key = toLower(address);
    auto [it, inserted] = first_line.emplace(key, line_no);
    if (!inserted)
      return lineError(filename, line_no,
                       "duplicate quota for " + quoteForMessage(key) + " (first set on line " +
                           std::to_string(it->second) + ")");
    out.entries.push_back(QuotaEntry{std::move(key), *bytes, line_no});
  }
  return out;
}

}  // namespace postern::directory
