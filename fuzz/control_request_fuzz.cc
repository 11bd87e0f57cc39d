// libFuzzer target for parseControlRequest (src/app/control_request.h): the line a local
// client sends to state/control.sock. Invariant: an accepted request formats to a line that
// parses back to the same request. Seeds: fuzz/corpus/control_request/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "app/control_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace postern::app;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto r = parseControlRequest(line);
  if (!r) return 0;
  auto again = parseControlRequest(formatControlRequest(*r));
  if (!again || again->kind != r->kind || again->target != r->target || again->seconds != r->seconds ||
      again->reason != r->reason)
    __builtin_trap();
  if (r->kind == ControlRequest::Kind::kBanAdd && (r->seconds == 0 || r->seconds > kMaxManualBanSeconds))
    __builtin_trap();
  return 0;
}
