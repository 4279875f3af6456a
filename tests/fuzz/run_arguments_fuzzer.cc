// Fuzz target: the run-arguments descriptor reader (proto/run_arguments.h),
// exactly as the host calls it: the input is the contents of a sealed memfd,
// passed as the fourth descriptor of a Run.
#include "proto/run_arguments.h"
#include "tests/fuzz/service_harness.h"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto fd = pat::fuzz::sealed_memfd(std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    auto arguments = pat::proto::read_run_arguments_descriptor(fd.get());
    if (arguments.argv.empty()) std::abort();  // read_run_arguments promises argv[0]
    for (const auto& text : arguments.argv) {
      if (text.find('\0') != std::string::npos) std::abort();
    }
    for (const auto& text : arguments.env) {
      if (text.find('\0') != std::string::npos) std::abort();
    }
  } catch (const pat::proto::ErrorReply& refused) {
    if (!refused.error().is(pat::proto::ErrorCode::InvalidParameter)) std::abort();
  }
  return 0;
}
