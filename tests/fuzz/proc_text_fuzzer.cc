// Fuzz target: the /proc text parsers (tracer/proc_text.h) on any text: the
// first byte picks the field name a status parse looks for.
#include "tracer/proc_text.h"

#include <array>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr std::array<std::string_view, 5> kNames = {"VmRSS", "VmSize", "Pss", "Tgid", "T"};
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)pat::tracer::parse_proc_stat(text);
  (void)pat::tracer::parse_status_number(text, kNames[data[0] % kNames.size()]);
  return 0;
}
