// Fuzz target: the Run request parser (proto/run_request.h), both ways the
// request arrives. Byte 0 even: the rest is the arguments' descriptor's
// contents, as the host reads them from the sealed memfd
// (RunRequest::load_arguments). Byte 0 odd: the rest is a call's
// "parameters" text, parsed as every frame is (proto/json_text.h) and then
// by RunRequest::parse, as patd and the host do. A request that parses must
// survive the trip patd makes it take to the host: to_json, then parse again,
// to the same JSON.
#include "proto/errors.h"
#include "proto/json_text.h"
#include "proto/run_request.h"

#include <cstdlib>
#include <string_view>

namespace {

using pat::proto::RunRequest;

bool holds_nul(const std::vector<std::string>& texts) {
  for (const auto& text : texts) {
    if (text.find('\0') != std::string::npos) return true;
  }
  return false;
}

// What RunRequest promises of any request it accepted.
void check_arguments(const RunRequest& request) {
  if (request.arguments.argv.empty()) std::abort();
  if (holds_nul(request.arguments.argv) || holds_nul(request.arguments.env)) std::abort();
}

void descriptor_contents(std::string_view text) {
  RunRequest request;
  request.load_arguments(text);
  check_arguments(request);
}

void call_parameters(std::string_view text) {
  auto parsed = pat::proto::parse_json_text(text);
  auto* params = std::get_if<nlohmann::json>(&parsed);
  if (!params || !params->is_object()) return;
  auto request = RunRequest::parse(*params);
  if (request.program.find('\0') != std::string::npos || request.cwd.find('\0') != std::string::npos) std::abort();
  if (request.program.front() != '/' || request.cwd.front() != '/') std::abort();
  if (!request.arguments_in_fd) check_arguments(request);
  auto sent = request.for_host().to_json();
  if (RunRequest::parse(sent).to_json() != sent) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      descriptor_contents(text);
    } else {
      call_parameters(text);
    }
  } catch (const pat::proto::ErrorReply& refused) {
    if (!refused.error().is(pat::proto::ErrorCode::InvalidParameter)) std::abort();
  }
  return 0;
}
