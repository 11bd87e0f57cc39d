// libFuzzer target: Traefik's acme.json parser (tls/traefik_acme.h) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tls/traefik_acme.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto f = postern::tls::parseTraefikAcme(in);
  if (f) {
    for (const auto& e : f->entries)
      if (e.cert_pem.empty() && e.key_pem.empty() && e.index == 0) __builtin_trap();   // index is 1-based
  }
  std::string out;
  postern::tls::decodeBase64(in, out);
  return 0;
}
