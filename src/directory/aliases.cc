// Parser for docker-mailserver's postfix-virtual.cf (format in aliases.h).
#include "directory/aliases.h"

#include <unordered_map>

#include "util/strings.h"

namespace postern::directory {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr std::string_view kBlanks = " \t\v\f";

bool isBlank(char c) { return kBlanks.find(c) != std::string_view::npos; }

Status lineError(std::string_view filename, size_t line, std::string_view message) {
  return Status::invalid(std::string(filename) + ":" + std::to_string(line) + ": error: " + std::string(message));
}

// One physical line's content (trimmed) within a logical line.
struct Segment {
  size_t line;
  std::string_view text;
};

// Turns one logical line (its first segment starts with the alias) into an Alias.
Result<Alias> parseEntry(const std::vector<Segment>& segments, std::string_view filename) {
  const Segment& first = segments.front();
  size_t split_at = first.text.find_first_of(kBlanks);
  std::string_view source = first.text.substr(0, split_at);
  if (Status st = checkAliasSource(source); !st) {
    std::string message = "invalid alias '" + quoteForMessage(source) + "': " + st.message();
    if (source.find('@') == std::string_view::npos)
      message += " (expected alias@domain or @domain; Postfix's bare 'user' and 'domain anything' forms are not supported)";
    else if (source.back() == ':')
      message += " (no ':' after the alias: that is aliases(5) syntax, virtual(5) separates with whitespace)";
    return lineError(filename, first.line, message);
  }
  Alias alias;
  alias.source = toLower(source);
  alias.line = first.line;
  alias.end_line = segments.back().line;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string_view rest = segments[i].text;
    if (i == 0) rest = split_at == std::string_view::npos ? std::string_view() : rest.substr(split_at);
    for (std::string_view target : splitTargets(rest)) {
      if (target.front() == '#')
        return lineError(filename, segments[i].line,
                         "'#' starts a comment only at the beginning of a line (found '" + quoteForMessage(target) +
                             "' among the targets of " + quoteForMessage(alias.source) + ")");
      if (Status st = checkAddress(target); !st)
        return lineError(filename, segments[i].line,
                         "invalid target '" + quoteForMessage(target) + "' of alias " + quoteForMessage(alias.source) +
                             ": " + st.message());
      alias.targets.push_back(toLower(target));
    }
  }
  if (alias.targets.empty())
    return lineError(filename, first.line, "alias " + quoteForMessage(alias.source) + " has no targets");
  return alias;
}

}  // namespace

Status checkAliasSource(std::string_view source) {
  if (!source.empty() && source.front() == '@') {
    if (source.size() > kMaxAddressLength)
      return Status::invalid("the address is longer than " + std::to_string(kMaxAddressLength) + " bytes");
    return checkDomain(source.substr(1));
  }
  return checkAddress(source);
}

std::vector<std::string_view> splitTargets(std::string_view list) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = pos;
    while (end < list.size() && list[end] != ',' && !isBlank(list[end])) ++end;
    if (end > pos) out.push_back(list.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Result<AliasesFile> parseAliases(std::string_view text, std::string_view filename) {
  AliasesFile out;
  std::unordered_map<std::string, size_t> first_line;   // source -> line it was defined on
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    text.remove_prefix(kUtf8Bom.size());
    out.notes.push_back({1, "UTF-8 byte order mark at the start of the file ignored"});
  }

  std::vector<Segment> entry;   // the logical line being collected
  auto finish = [&]() -> Status {
    if (entry.empty()) return Status::ok();
    Result<Alias> alias = parseEntry(entry, filename);
    entry.clear();
    if (!alias) return alias.status();
    auto [it, inserted] = first_line.emplace(alias->source, alias->line);
    if (!inserted)
      return lineError(filename, alias->line,
                       "duplicate alias " + quoteForMessage(alias->source) + " (first defined on line " +
                           std::to_string(it->second) + ")");
    out.aliases.push_back(std::move(alias).value());
    return Status::ok();
  };

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
    if (isBlank(line.front())) {
      if (entry.empty())
        return lineError(filename, line_no,
                         "line starts with whitespace, which in Postfix tables continues the previous line, "
                         "but there is no alias line before it");
      out.notes.push_back({line_no, "continues the alias on line " + std::to_string(entry.front().line) +
                                        " (a line starting with whitespace continues the previous line)"});
      entry.push_back({line_no, content});
      continue;
    }
    if (Status st = finish(); !st) return st;
    entry.push_back({line_no, content});
  }
  if (Status st = finish(); !st) return st;
  return out;
}

}  // namespace postern::directory
