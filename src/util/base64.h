// Base64 (RFC 4648 §4, with padding, no line breaks): SASL responses, DKIM's b= and bh=.
#pragma once

#include <string>
#include <string_view>

namespace postern {

std::string base64Encode(std::string_view in);

}  // namespace postern
