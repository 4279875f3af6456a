// JSON text received from a peer, parsed with a bound on how deeply it nests.
// nlohmann::json copies, compares and serialises values recursively, one
// stack frame per level, so a value nested 150,000 deep overflows the stack
// of whoever copies it: a 300 KB call did that to the root patd (issue 13,
// 1.1). Every JSON text pat receives (calls, replies, the run-arguments
// descriptor) is parsed here, so no deeper value ever exists in memory.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace pat::proto {

// The deepest nesting accepted: arrays and objects count one level each, the
// outermost value included. pat's deepest message, a Group.List reply, nests
// 7 levels (reply, parameters, groups, group, members, member, argv); 128
// leaves room for any future shape while keeping a copy's recursion far below
// any thread's stack (measured in tests/fuzz: no stack overflow under ASan).
inline constexpr std::size_t kMaxJsonDepth = 128;

struct JsonRejection {
  enum class Why { Syntax, TooDeep };
  Why why;
  std::string message;  // one line, e.g. "not valid JSON (syntax error at byte 12)"
};

// The value of `text` (strict: nothing but blanks after it), or why not.
// nlohmann's own parser reads the text; this only stops it, before building
// anything deeper than kMaxJsonDepth.
std::variant<nlohmann::json, JsonRejection> parse_json_text(std::string_view text);

}  // namespace pat::proto
