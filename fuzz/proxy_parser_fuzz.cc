// libFuzzer target for the PROXY protocol v1/v2 parser (proxy/proxy_parser.h; haproxy
// doc/proxy-protocol.txt sections 2.1 and 2.2). Seeds: fuzz/corpus/proxy_parser/.
//
// Besides crashes and sanitizer reports, it checks the parser's contract on every input:
// - consumed <= size; consumed > 0 exactly for kDone, and within the format's bounds;
// - an error carries a code and a reason, anything else carries neither;
// - every string_view in the header points inside the header's own bytes;
// - the decision does not depend on how the bytes were split: the header alone parses the same,
//   one byte less is kNeedMore, and a decided prefix decides the same way as the whole input;
// - parse() says kNotProxy exactly when detectSignature() says kNone;
// - none of the three entry points allocates (counted with the sanitizer malloc hooks).
#include <sanitizer/allocator_interface.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "proxy/proxy_parser.h"

namespace {

using namespace postern::proxy;

// Allocation counter for the malloc hook. A fuzz target is one single-threaded process, and the
// hook API takes plain function pointers, so this is the one mutable global here.
size_t g_allocations = 0;

void onMalloc(const volatile void*, size_t) {
  ++g_allocations;
}
void onFree(const volatile void*) {}

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "proxy_parser_fuzz: invariant violated: %s\n", what);
  std::abort();
}

bool within(std::string_view v, const uint8_t* begin, size_t n) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= begin && p + v.size() <= begin + n;
}

bool sameDecision(const ParseResult& a, const ParseResult& b) {
  return a.status == b.status && a.error == b.error && a.consumed == b.consumed;
}

void checkResult(const ParseResult& r, const uint8_t* data, size_t size) {
  check(r.consumed <= size, "consumed <= size");
  switch (r.status) {
    case Status::kDone:
      check(r.consumed > 0, "kDone => consumed > 0");
      check(r.error == Error::kNone && r.reason.empty(), "kDone => no error");
      break;
    case Status::kNeedMore:
      check(r.consumed == 0, "kNeedMore => consumed == 0");
      check(r.error == Error::kNone && r.reason.empty(), "kNeedMore => no error");
      check(size < kMaxAcceptedHeaderLength, "kNeedMore never asks for more than kMaxAcceptedHeaderLength");
      break;
    case Status::kError:
      check(r.consumed == 0, "kError => consumed == 0");
      check(r.error != Error::kNone && !r.reason.empty(), "kError => error code and reason");
      break;
  }
  check(errorName(r.error) != nullptr, "errorName");
  if (r.status != Status::kDone) return;

  const Header& h = r.header;
  if (h.version == Version::kV1) {
    check(r.consumed <= kV1MaxLength, "v1 header <= 107 bytes");
    check(r.consumed >= 2 && data[r.consumed - 2] == '\r' && data[r.consumed - 1] == '\n', "v1 ends with CRLF");
    check(h.command == Command::kProxy, "v1 is PROXY");
  } else {
    check(r.consumed >= kV2HeaderFixedLength && r.consumed <= kV2MaxAcceptedLength, "v2 length bounds");
  }
  if (h.family == Family::kInet && h.command == Command::kProxy) check(h.src_addr.isV4() && h.dst_addr.isV4(), "v4");
  if (h.family == Family::kInet6 && h.command == Command::kProxy) {
    check(!h.src_addr.isV4() && !h.dst_addr.isV4(), "v6");
  }
  check(h.unique_id.size() <= kV2MaxUniqueIdLength, "unique id bound");
  for (std::string_view v : {h.unix_src, h.unix_dst, h.alpn, h.authority, h.unique_id, h.netns, h.ssl.version, h.ssl.cn,
                             h.ssl.cipher, h.ssl.sig_alg, h.ssl.key_alg}) {
    check(within(v, data, r.consumed), "string_view inside the header bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  __sanitizer_install_malloc_and_free_hooks(onMalloc, onFree);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);

  const size_t allocations = g_allocations;
  const ParseResult r = parse(input);
  const Signature signature = detectSignature(input);
  const std::string_view description = describeNonProxy(input);
  check(g_allocations == allocations, "no heap allocation in parse/detectSignature/describeNonProxy");

  checkResult(r, data, size);
  check(!description.empty(), "describeNonProxy is never empty");
  check((r.error == Error::kNotProxy) == (signature == Signature::kNone), "kNotProxy <=> Signature::kNone");

  if (r.status == Status::kDone) {
    // The header alone decides the same, and one byte less is not enough.
    const ParseResult alone = parse(input.first(r.consumed));
    check(sameDecision(alone, r), "header alone parses the same");
    check(alone.header.family == r.header.family && alone.header.src_port == r.header.src_port &&
              alone.header.crc32c == r.header.crc32c && alone.header.unknown_tlvs == r.header.unknown_tlvs,
          "header alone decodes the same");
    check(parse(input.first(r.consumed - 1)).status == Status::kNeedMore, "one byte short => kNeedMore");
  }
  if (size > 0) {
    // A decision made on fewer bytes is never revised by more bytes.
    const ParseResult shorter = parse(input.first(size - 1));
    if (shorter.status != Status::kNeedMore) check(sameDecision(shorter, r), "decided prefix decides the same");
  }
  return 0;
}
