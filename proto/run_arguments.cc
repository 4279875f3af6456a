#include "proto/run_arguments.h"

#include "proto/params.h"

namespace pat::proto {

RunArguments read_run_arguments(const nlohmann::json& object) {
  ParamReader params(object);
  RunArguments arguments{params.string_array("argv"),
                         params.optional_string_array("env").value_or(std::vector<std::string>{})};
  if (arguments.argv.empty()) {
    throw ErrorReply(ErrorCode::InvalidParameter, "parameter \"argv\": expected at least argv[0]",
                     {{"parameter", "argv"}, {"expected", "a non-empty array of strings"}});
  }
  return arguments;
}

bool arguments_in_descriptor(const nlohmann::json& params) {
  return ParamReader(params).boolean("arguments_in_fd", false);
}

void check_run_descriptors(const nlohmann::json& params, std::size_t received) {
  bool in_fd = arguments_in_descriptor(params);
  std::size_t expected = in_fd ? 4 : 3;
  if (received == expected) return;
  std::string what = in_fd ? "4 file descriptors (stdin, stdout, stderr, the arguments)"
                           : "3 file descriptors (stdin, stdout, stderr)";
  throw ErrorReply(ErrorCode::InvalidParameter,
                   "this call needs " + what + " passed with SCM_RIGHTS, got " + std::to_string(received),
                   {{"parameter", "fds"}, {"expected", what}});
}

}  // namespace pat::proto
