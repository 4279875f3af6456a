#include "proto/idl.h"

#include "proto/interface.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace pat::proto {

namespace {

// The text without comments ('#' to the end of a line).
std::string without_comments(std::string_view text) {
  std::string out;
  bool comment = false;
  for (char c : text) {
    if (c == '#') comment = true;
    if (c == '\n') comment = false;
    if (!comment) out += c;
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string text) : text_(std::move(text)) {}

  std::variant<IdlInterface, std::string> interface() {
    IdlInterface result;
    if (word() != "interface") return error("expected 'interface'");
    result.name = word();
    if (result.name.empty()) return error("interface without a name");
    for (;;) {
      skip_space();
      if (at_ >= text_.size()) return result;
      std::string keyword = word();
      std::string name = word();
      if (name.empty()) return error("'" + keyword + "' without a name");
      auto fields = struct_fields();
      if (!fields) return error("malformed fields of " + name);
      if (keyword == "type") {
        result.types[name] = *fields;
      } else if (keyword == "error") {
        result.errors[name] = *fields;
      } else if (keyword == "method") {
        skip_space();
        if (text_.compare(at_, 2, "->") != 0) return error("method " + name + " without '->'");
        at_ += 2;
        auto out = struct_fields();
        if (!out) return error("malformed output of " + name);
        result.methods[name] = IdlMethod{*fields, *out};
      } else {
        return error("unknown keyword '" + keyword + "'");
      }
    }
  }

 private:
  std::string error(const std::string& why) const { return why + " at offset " + std::to_string(at_); }

  void skip_space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }

  // A name, keyword or type: letters, digits, '.', '_', and the type marks
  // '?', '[', ']'.
  std::string word() {
    skip_space();
    std::size_t start = at_;
    while (at_ < text_.size()) {
      char c = text_[at_];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '?' || c == '[' || c == ']'))
        break;
      ++at_;
    }
    return text_.substr(start, at_ - start);
  }

  // "(name: type, ...)"
  std::optional<IdlFields> struct_fields() {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != '(') return std::nullopt;
    ++at_;
    IdlFields fields;
    for (;;) {
      skip_space();
      if (at_ < text_.size() && text_[at_] == ')') {
        ++at_;
        return fields;
      }
      IdlField field;
      field.name = word();
      skip_space();
      if (field.name.empty() || at_ >= text_.size() || text_[at_] != ':') return std::nullopt;
      ++at_;
      field.type = word();
      if (field.type.empty()) return std::nullopt;
      fields.push_back(std::move(field));
      skip_space();
      if (at_ < text_.size() && text_[at_] == ',') ++at_;
    }
  }

  std::string text_;
  std::size_t at_ = 0;
};

bool fits_kind(const nlohmann::json& value, std::string_view kind) {
  if (kind == "int") return value.is_number_integer();
  if (kind == "float") return value.is_number();
  if (kind == "string") return value.is_string();
  if (kind == "bool") return value.is_boolean();
  if (kind == "object") return value.is_object();
  return false;
}

}  // namespace

std::variant<IdlInterface, std::string> parse_idl(std::string_view text) {
  return Parser(without_comments(text)).interface();
}

IdlSet::IdlSet(std::span<const InterfaceDescription> interfaces) {
  for (const auto& description : interfaces) {
    auto parsed = parse_idl(description.description);
    if (auto* problem = std::get_if<std::string>(&parsed)) {
      std::fprintf(stderr, "malformed IDL of %.*s: %s\n", static_cast<int>(description.name.size()),
                   description.name.data(), problem->c_str());
      std::abort();
    }
    auto& interface = std::get<IdlInterface>(parsed);
    interfaces_[interface.name] = interface;
  }
}

const IdlInterface* IdlSet::find(std::string_view interface) const {
  auto it = interfaces_.find(interface);
  return it == interfaces_.end() ? nullptr : &it->second;
}

std::optional<std::string> IdlSet::check(const nlohmann::json& value, std::string_view type,
                                         std::string_view interface) const {
  return check_at(value, type, interface, "");
}

std::optional<std::string> IdlSet::check_fields(const nlohmann::json& value, const IdlFields& fields,
                                                std::string_view interface) const {
  return check_fields_at(value, fields, interface, "");
}

std::optional<std::string> IdlSet::check_at(const nlohmann::json& value, std::string_view type,
                                            std::string_view interface, const std::string& path) const {
  auto wrong = [&] { return (path.empty() ? std::string("value") : path) + ": expected " + std::string(type); };
  if (!type.empty() && type.front() == '?') {
    if (value.is_null()) return std::nullopt;
    return check_at(value, type.substr(1), interface, path);
  }
  if (type.rfind("[]", 0) == 0) {
    if (!value.is_array()) return wrong();
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto problem = check_at(value[i], type.substr(2), interface, path + "[" + std::to_string(i) + "]"))
        return problem;
    }
    return std::nullopt;
  }
  if (type.rfind("[string]", 0) == 0) {
    if (!value.is_object()) return wrong();
    for (const auto& [key, item] : value.items()) {
      if (auto problem = check_at(item, type.substr(8), interface, path + "." + key)) return problem;
    }
    return std::nullopt;
  }
  if (type == "int" || type == "float" || type == "string" || type == "bool" || type == "object") {
    return fits_kind(value, type) ? std::nullopt : std::optional<std::string>(wrong());
  }
  // A named type: "Member" in this interface, "io.pat.Group" in another.
  std::string_view owner = interface, name = type;
  if (auto dot = type.rfind('.'); dot != std::string_view::npos) {
    owner = type.substr(0, dot);
    name = type.substr(dot + 1);
  }
  const auto* declared = find(owner);
  if (declared == nullptr) return path + ": unknown interface " + std::string(owner);
  auto it = declared->types.find(name);
  if (it == declared->types.end()) return path + ": unknown type " + std::string(type);
  return check_fields_at(value, it->second, owner, path);
}

std::optional<std::string> IdlSet::check_fields_at(const nlohmann::json& value, const IdlFields& fields,
                                                   std::string_view interface, const std::string& path) const {
  std::string prefix = path.empty() ? "" : path + ".";
  if (!value.is_object()) return (path.empty() ? std::string("value") : path) + ": expected an object";
  for (const auto& [key, item] : value.items()) {
    const IdlField* field = nullptr;
    for (const auto& candidate : fields) {
      if (candidate.name == key) field = &candidate;
    }
    if (field == nullptr) return prefix + key + ": not declared";
    if (auto problem = check_at(item, field->type, interface, prefix + key)) return problem;
  }
  for (const auto& field : fields) {
    if (!field.optional() && !value.contains(field.name)) return prefix + field.name + ": missing";
  }
  return std::nullopt;
}

}  // namespace pat::proto
