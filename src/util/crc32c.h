// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), as used by the
// PROXY protocol v2 PP2_TYPE_CRC32C TLV and by spool records. None of the project's
// dependencies exposes CRC-32C, so it is implemented here (SSE 4.2, or slicing-by-8 tables).
#pragma once

#include <cstddef>
#include <cstdint>

namespace postern {

// Extends `crc` (0 to start) over [data, data+n). Uses the SSE 4.2 instruction when the
// processor has it, else tables.
uint32_t crc32c(uint32_t crc, const void* data, size_t n);
// The portable table version (tests compare the two).
uint32_t crc32cTable(uint32_t crc, const void* data, size_t n);

}  // namespace postern
