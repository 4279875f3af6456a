// Calls and replies of the control protocol (DESIGN "Control protocol"):
//   call:   {"method": "io.pat.Group.Create", "parameters": {...}, "more": true, "oneway": true}
//   reply:  {"parameters": {...}, "continues": true}
//   error:  {"error": "io.pat.GroupNotFound", "parameters": {...}}
// Parsing validates shape and types and says precisely what is wrong.
#pragma once

#include "proto/errors.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace pat::proto {

using nlohmann::json;

struct Call {
  std::string method;                       // fully qualified: interface + "." + Method
  json parameters = json::object();
  bool more = false;    // the caller accepts a stream of replies
  bool oneway = false;  // the caller wants no reply at all

  std::string interface_name() const;  // "io.pat.Group" for "io.pat.Group.Create"
};

struct Reply {
  json parameters = json::object();
  bool continues = false;      // more replies to this call follow
  std::optional<Error> error;  // set for error replies
};

// A frame (without its NUL) as a call, or the InvalidMessage error that
// explains why it is not one.
std::variant<Call, Error> parse_call(std::string_view frame);

// A frame (without its NUL) as a reply, or the InvalidMessage error.
std::variant<Reply, Error> parse_reply(std::string_view frame);

// Serialised frames, NUL included.
std::string encode(const Call& call);
std::string encode(const Reply& reply);
std::string encode_error(const Error& error);

}  // namespace pat::proto
