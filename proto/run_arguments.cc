#include "proto/run_arguments.h"

#include "proto/json_text.h"
#include "proto/params.h"

#include <sys/stat.h>
#include <unistd.h>

namespace pat::proto {

RunArguments read_run_arguments(const nlohmann::json& object) {
  ParamReader params(object);
  RunArguments arguments{params.c_string_array("argv"),
                         params.optional_c_string_array("env").value_or(std::vector<std::string>{})};
  if (arguments.argv.empty()) {
    throw ErrorReply(ErrorCode::InvalidParameter, "parameter \"argv\": expected at least argv[0]",
                     {{"parameter", "argv"}, {"expected", "a non-empty array of strings"}});
  }
  return arguments;
}

RunArguments read_run_arguments_descriptor(int fd) {
  auto invalid = [](const std::string& why) {
    return ErrorReply(ErrorCode::InvalidParameter, "the arguments descriptor: " + why,
                      {{"parameter", "fds"}, {"expected", "JSON {argv, env} in a file"}});
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw invalid("not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxArgumentsBytes) throw invalid("larger than allowed");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::pread(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n <= 0) throw invalid("unreadable");
    done += static_cast<std::size_t>(n);
  }
  auto parsed = parse_json_text(text);
  if (auto* rejection = std::get_if<JsonRejection>(&parsed)) throw invalid(rejection->message);
  const auto& object = std::get<nlohmann::json>(parsed);
  if (!object.is_object()) throw invalid("not a JSON object");
  return read_run_arguments(object);
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
