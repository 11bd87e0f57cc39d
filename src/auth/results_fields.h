// Finding the Authentication-Results fields a message brought along that claim our
// authserv-id (RFC 8601 §5: a border MTA removes them). Pure, no asio: compiled into the fuzz
// build (fuzz/dmarc_record_fuzz.cc). Included by auth/results.h.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace postern::auth {

inline constexpr size_t kArMaxCommentDepth = 16;  // nested comments deeper than this end the scan of a field

// Byte ranges [begin, end) (each a whole field with its CRLF) of the Authentication-Results
// fields in the header section of `message` whose authserv-id equals `authserv_id`
// (case-insensitive, after CFWS). Pure; the header ends at the first empty line.
std::vector<std::pair<size_t, size_t>> ownResultsFields(std::string_view message, std::string_view authserv_id);

}  // namespace postern::auth
