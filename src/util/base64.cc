#include "util/base64.h"

#include <openssl/evp.h>

namespace postern {

std::string base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');   // EVP_EncodeBlock writes a NUL too
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64Decode(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (s.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    unsigned n = 0;
    int have = 0;
    for (size_t j = 0; j < 4; ++j) {
      n <<= 6;
      char c = s[i + j];
      if (c == '=') {
        if (i + 4 != s.size() || j < 2) return std::nullopt;   // padding only at the very end
        continue;
      }
      int v = val(c);
      if (v < 0 || have != static_cast<int>(j)) return std::nullopt;   // no data after padding
      n |= static_cast<unsigned>(v);
      ++have;
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (have > 2) out += static_cast<char>((n >> 8) & 0xff);
    if (have > 3) out += static_cast<char>(n & 0xff);
  }
  return out;
}

}  // namespace postern
