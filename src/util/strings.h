// Small string helpers shared by parsers and the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern {

// ASCII character classes of the RFC grammars (ABNF WSP, ALPHA, DIGIT), independent of
// the C locale.
inline bool isWsp(char c) { return c == ' ' || c == '\t'; }
inline bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool isDigit(char c) { return c >= '0' && c <= '9'; }
inline bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }

std::string toLower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istartsWith(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

// One line of a text file: its 1-based number and its bytes without the line end.
struct TextLine {
  size_t number;
  std::string_view text;
};
// The lines of a configuration-style file: split at '\n', a '\r' before it dropped, a UTF-8
// byte order mark at the start dropped; a final line without '\n' counts. The views point
// into `text`.
std::vector<TextLine> splitLines(std::string_view text);
std::vector<std::string_view> split(std::string_view s, char sep);
// The next word of `rest` separated by blanks (spaces, tabs), advancing `rest` past it;
// empty when only blanks are left.
std::string_view takeWord(std::string_view& rest);
// Edit distance, for did-you-mean suggestions.
size_t levenshtein(std::string_view a, std::string_view b);
// The candidate closest to `word` if it is close enough to be a plausible typo.
std::optional<std::string> didYouMean(std::string_view word, const std::vector<std::string>& candidates);
// Strict unsigned decimal: digits only, no sign, no leading '+', value <= max.
std::optional<uint64_t> parseDecimal(std::string_view s, uint64_t max);
// "30s", "5m", "1h", "2d", "1w", "250ms" or a bare number of seconds, into milliseconds.
std::optional<uint64_t> parseDurationMs(std::string_view s);
// "25MiB", "512KiB", "10M", "1000" (bytes) into bytes.
std::optional<uint64_t> parseSize(std::string_view s);
std::string formatDurationMs(uint64_t ms);

}  // namespace postern
