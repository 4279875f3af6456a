#include "proto/run_request.h"

#include "proto/params.h"
#include "proto/rlimits.h"

namespace pat::proto {

namespace {

[[noreturn]] void invalid(const char* parameter, const std::string& expected) {
  throw ErrorReply(ErrorCode::InvalidParameter, std::string("parameter \"") + parameter + "\": expected " + expected,
                   {{"parameter", parameter}, {"expected", expected}});
}

std::string absolute_path(const ParamReader& params, const char* name, std::optional<std::string> fallback) {
  auto value = fallback ? params.optional_string(name).value_or(*fallback) : params.string(name);
  if (value.empty() || value.front() != '/') invalid(name, "an absolute path");
  return value;
}

// From {"argv": [...], "env": [...]}: the call's parameters or the
// descriptor's JSON.
RunArguments read_arguments(const nlohmann::json& object) {
  ParamReader params(object);
  RunArguments arguments{params.string_array("argv"),
                         params.optional_string_array("env").value_or(std::vector<std::string>{})};
  if (arguments.argv.empty()) invalid("argv", "a non-empty array of strings");
  return arguments;
}

}  // namespace

RunRequest RunRequest::parse(const nlohmann::json& object) {
  ParamReader params(object);
  RunRequest request;
  request.program = absolute_path(params, "program", std::nullopt);
  request.arguments_in_fd = params.boolean("arguments_in_fd", false);
  if (!request.arguments_in_fd) request.arguments = read_arguments(object);
  request.cwd = absolute_path(params, "cwd", kDefaultCwd);
  request.umask = static_cast<mode_t>(params.optional_integer("umask", 0, 0777).value_or(kDefaultUmask));
  if (const auto* rlimits = params.optional_object("rlimits")) request.rlimits = parse_rlimits(*rlimits);
  request.detach = params.boolean("detach", false);
  request.stopped = params.boolean("stopped", false);
  request.group = params.optional_string("group");
  request.new_group = params.boolean("new_group", false);
  return request;
}

nlohmann::json RunRequest::to_json() const {
  nlohmann::json out = {{"program", program}, {"cwd", cwd}, {"umask", umask}, {"detach", detach}};
  if (arguments_in_fd) {
    out["arguments_in_fd"] = true;
  } else {
    out["argv"] = arguments.argv;
    out["env"] = arguments.env;
  }
  if (!rlimits.empty()) out["rlimits"] = rlimits_to_json(rlimits);
  if (group) out["group"] = *group;
  if (new_group) out["new_group"] = true;
  if (stopped) out["stopped"] = true;
  return out;
}

RunRequest RunRequest::for_host() const {
  RunRequest request = *this;
  request.group.reset();
  request.new_group = false;
  return request;
}

void RunRequest::check_descriptors(std::size_t received) const {
  if (received == descriptor_count()) return;
  std::string what = arguments_in_fd ? "4 file descriptors (stdin, stdout, stderr, the arguments)"
                                     : "3 file descriptors (stdin, stdout, stderr)";
  throw ErrorReply(ErrorCode::InvalidParameter,
                   "this call needs " + what + " passed with SCM_RIGHTS, got " + std::to_string(received),
                   {{"parameter", "fds"}, {"expected", what}});
}

std::string RunRequest::arguments_text() const {
  return nlohmann::json{{"argv", arguments.argv}, {"env", arguments.env}}.dump();
}

void RunRequest::load_arguments(std::string_view text) {
  auto fail = [](const std::string& why) {
    return ErrorReply(ErrorCode::InvalidParameter, "the arguments descriptor: " + why,
                      {{"parameter", "fds"}, {"expected", "JSON {argv, env} in a file"}});
  };
  if (text.size() > kMaxArgumentsBytes) throw fail("larger than allowed");
  auto object = nlohmann::json::parse(text, nullptr, false);
  if (!object.is_object()) throw fail("not a JSON object");
  arguments = read_arguments(object);
}

}  // namespace pat::proto
