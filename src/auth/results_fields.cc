// Finding the Authentication-Results fields that claim our authserv-id (RFC 8601 §5: a border
// MTA removes them, as they cannot be ours). Pure: no allocation beyond the result, one pass
// over the header section (fuzz: fuzz/dmarc_record_fuzz.cc).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/results_fields.h"
#include "util/strings.h"

namespace postern::auth {
namespace {


// Skips CFWS (RFC 5322 §3.2.2): blanks, line breaks of folded lines and comments, which nest
// and may hold quoted-pairs. False when a comment does not end or nests deeper than
// kArMaxCommentDepth.
bool skipCfws(std::string_view s, size_t& i) {
  while (i < s.size()) {
    char c = s[i];
    if (isWsp(c) || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '(') {
      size_t depth = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '\\') {
          ++i;   // quoted-pair: the next octet is literal
        } else if (s[i] == '(') {
          if (++depth > kArMaxCommentDepth) return false;
        } else if (s[i] == ')') {
          if (--depth == 0) break;
        }
      }
      if (i >= s.size()) return false;
      ++i;
    } else {
      return true;
    }
  }
  return true;
}

// The authserv-id of an Authentication-Results field value (§2.2: [CFWS] authserv-id, where
// authserv-id = value, a token or a quoted-string). Empty when there is none.
std::string authservId(std::string_view value) {
  size_t i = 0;
  if (!skipCfws(value, i) || i >= value.size()) return {};
  std::string id;
  if (value[i] == '"') {
    for (++i; i < value.size() && value[i] != '"'; ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      if (value[i] != '\r' && value[i] != '\n') id += value[i];
    }
    if (i >= value.size()) return {};   // unterminated
    return id;
  }
  for (; i < value.size(); ++i) {
    char c = value[i];
    if (isWsp(c) || c == '\r' || c == '\n' || c == ';' || c == '(') break;
    id += c;
  }
  return id;
}

bool ours(std::string_view field, std::string_view authserv_id) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && isWsp(name.back())) name.remove_suffix(1);   // RFC 5322 §4.5.8 obs-optional
  if (!iequals(name, "Authentication-Results")) return false;
  std::string id = authservId(field.substr(colon + 1));
  return !id.empty() && iequals(id, authserv_id);
}

}  // namespace

std::vector<std::pair<size_t, size_t>> ownResultsFields(std::string_view message, std::string_view authserv_id) {
  std::vector<std::pair<size_t, size_t>> out;
  if (authserv_id.empty()) return out;
  size_t begin = 0, end = 0;   // the field being collected: [begin, end), none when equal
  auto close = [&] {
    if (end > begin && ours(message.substr(begin, end - begin), authserv_id)) out.emplace_back(begin, end);
    begin = end;
  };
  size_t pos = 0;
  while (pos < message.size()) {
    size_t lf = message.find('\n', pos);
    size_t next = lf == std::string_view::npos ? message.size() : lf + 1;
    std::string_view line = message.substr(pos, next - pos);
    if (line == "\n" || line == "\r\n" || line == "\r") break;   // RFC 5322 §2.1: the empty line ends the header
    if (isWsp(line.front())) {
      if (end > begin) end = next;   // a continuation line of the open field (§2.2.3)
    } else {
      close();
      begin = pos;
      end = next;
    }
    pos = next;
  }
  close();
  return out;
}

}  // namespace postern::auth
