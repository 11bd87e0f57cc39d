// Base64 (RFC 4648 §4, with padding, no line breaks): SASL responses, DKIM's b= and bh=.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern {

std::string base64Encode(std::string_view in);
// Strict: a multiple of 4 characters of the base64 alphabet, '=' padding only at the very
// end; anything else (white space included) is nullopt.
std::optional<std::string> base64Decode(std::string_view in);

}  // namespace postern
