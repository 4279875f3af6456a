// A reader for the varlink interface descriptions pat serves
// (proto/interface.cc): enough of varlink's grammar (varlink.org,
// "Interface Definition") to list each type's, method's and error's fields,
// and to check a JSON value against a declared type. The unit tests hold
// the C++ contract (RunRequest, ExitStatus, the group object) against the
// served IDL with it, so that the two cannot drift apart unnoticed.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pat::proto {

struct InterfaceDescription;

struct IdlField {
  std::string name;
  std::string type;  // as written: "int", "?[]string", "io.pat.Group", "[string]int"
  bool optional() const { return !type.empty() && type.front() == '?'; }
};
using IdlFields = std::vector<IdlField>;

struct IdlMethod {
  IdlFields in, out;
};

struct IdlInterface {
  std::string name;
  std::map<std::string, IdlFields, std::less<>> types;
  std::map<std::string, IdlMethod, std::less<>> methods;
  std::map<std::string, IdlFields, std::less<>> errors;
};

// The parsed interface, or what is wrong with the text.
std::variant<IdlInterface, std::string> parse_idl(std::string_view text);

// Every interface of a service, parsed; type names resolve across them.
class IdlSet {
 public:
  // Aborts on a malformed description: the IDL is pat's own, compiled in.
  explicit IdlSet(std::span<const InterfaceDescription> interfaces);

  const IdlInterface* find(std::string_view interface) const;

  // nullopt when `value` fits `type` as declared in `interface`; otherwise
  // where and why it does not (e.g. "members[0].argv: expected []string").
  // A struct may not carry undeclared fields and must carry every field
  // that is not optional.
  std::optional<std::string> check(const nlohmann::json& value, std::string_view type,
                                   std::string_view interface) const;
  std::optional<std::string> check_fields(const nlohmann::json& value, const IdlFields& fields,
                                          std::string_view interface) const;

 private:
  std::optional<std::string> check_at(const nlohmann::json& value, std::string_view type, std::string_view interface,
                                      const std::string& path) const;
  std::optional<std::string> check_fields_at(const nlohmann::json& value, const IdlFields& fields,
                                             std::string_view interface, const std::string& path) const;
  std::map<std::string, IdlInterface, std::less<>> interfaces_;
};

}  // namespace pat::proto
