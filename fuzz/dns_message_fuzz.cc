// libFuzzer target for the DNS message parser and its record decoders (src/dns/message.h).
// Seeds: fuzz/corpus/dns_message/ (answers as servers send them: MX with compression,
// NXDOMAIN with an SOA, CNAME chains, TXT, TLSA, AAAA).
#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/message.h"

namespace {

using namespace postern::dns;

// An escaped name is at most 4 characters per wire byte ("\DDD").
constexpr size_t kMaxNameText = 4 * kMaxNameWireLength;

void checkName(const std::string& n) {
  if (n.empty() || n.size() > kMaxNameText) __builtin_trap();
}

void checkRecord(const Message& m, const ResourceRecord& r) {
  checkName(r.name);
  if (r.rdata_offset > m.bytes.size() || m.bytes.size() - r.rdata_offset < r.rdata_length) __builtin_trap();
  if (r.ttl > kMaxTtl) __builtin_trap();
  // Every decoder on every record: they must refuse what is not theirs, never overrun.
  if (auto a = decodeA(m, r); a && r.rdata_length != 4) __builtin_trap();
  if (auto a = decodeAaaa(m, r); a && r.rdata_length != 16) __builtin_trap();
  if (auto mx = decodeMx(m, r)) checkName(mx->exchange);
  if (auto c = decodeCname(m, r)) checkName(*c);
  if (auto t = decodeTxt(m, r); t && t->size() >= r.rdata_length) __builtin_trap();
  (void)decodeTxtStrings(m, r);
  if (auto s = decodeSoa(m, r)) {
    checkName(s->mname);
    checkName(s->rname);
  }
  if (auto t = decodeTlsa(m, r); t && t->data.size() + 3 != r.rdata_length) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto m = parseMessage(bytes);
  if (!m) {
    if (m.status().message().empty()) __builtin_trap();
  } else {
    if (m->bytes.size() != size) __builtin_trap();
    if (m->questions.size() != m->header.qdcount || m->answers.size() != m->header.ancount ||
        m->authority.size() != m->header.nscount || m->additional.size() != m->header.arcount)
      __builtin_trap();
    for (const auto& q : m->questions) checkName(q.name);
    for (const auto* section : {&m->answers, &m->authority, &m->additional})
      for (const auto& r : *section) checkRecord(*m, r);
  }
  // Names at every offset, as pointers may send the reader anywhere.
  for (size_t at = 0; at < size && at < 512; ++at) {
    size_t next = 0;
    auto n = readName(bytes, at, size, &next);
    if (n) {
      checkName(*n);
      if (next <= at || next > size) __builtin_trap();
    }
  }
  return 0;
}
