#include "proto/message.h"

#include "proto/frame.h"
#include "proto/json_text.h"

namespace pat::proto {

namespace {

Error invalid(std::string message) { return Error::make(ErrorCode::InvalidMessage, std::move(message)); }

// nlohmann::json throws on invalid UTF-8 while dumping; replace instead, so a
// hostile string can never turn a reply into an exception.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<json> parse_object(std::string_view frame, Error& error) {
  auto parsed = parse_json_text(frame);
  if (auto* rejection = std::get_if<JsonRejection>(&parsed)) {
    error = invalid("message is " + rejection->message);
    return std::nullopt;
  }
  json& value = std::get<json>(parsed);
  if (!value.is_object()) {
    error = invalid("message is not a JSON object");
    return std::nullopt;
  }
  return std::move(value);
}

// Reads an optional boolean member; a wrong type is an error, not a default.
bool read_flag(const json& object, const char* key, bool& out, Error& error) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_boolean()) {
    error = invalid(std::string("\"") + key + "\" must be a boolean");
    return false;
  }
  out = it->get<bool>();
  return true;
}

bool read_parameters(const json& object, json& out, Error& error) {
  auto it = object.find("parameters");
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_object()) {
    error = invalid("\"parameters\" must be an object");
    return false;
  }
  out = *it;
  return true;
}

}  // namespace

std::string Call::interface_name() const {
  auto dot = method.rfind('.');
  return dot == std::string::npos ? std::string() : method.substr(0, dot);
}

std::variant<Call, Error> parse_call(std::string_view frame) {
  Error error;
  auto object = parse_object(frame, error);
  if (!object) return error;
  auto method = object->find("method");
  if (method == object->end() || !method->is_string()) return invalid("\"method\" is missing or not a string");
  Call call;
  call.method = method->get<std::string>();
  auto dot = call.method.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == call.method.size()) {
    return invalid("\"method\" must be fully qualified, e.g. io.pat.Group.List");
  }
  if (!read_parameters(*object, call.parameters, error)) return error;
  if (!read_flag(*object, "more", call.more, error)) return error;
  if (!read_flag(*object, "oneway", call.oneway, error)) return error;
  if (call.more && call.oneway) return invalid("\"more\" and \"oneway\" exclude each other");
  return call;
}

std::variant<Reply, Error> parse_reply(std::string_view frame) {
  Error error;
  auto object = parse_object(frame, error);
  if (!object) return error;
  Reply reply;
  if (!read_parameters(*object, reply.parameters, error)) return error;
  if (!read_flag(*object, "continues", reply.continues, error)) return error;
  if (auto it = object->find("error"); it != object->end() && !it->is_null()) {
    if (!it->is_string()) return invalid("\"error\" must be a string");
    reply.error = Error{it->get<std::string>(), reply.parameters};
  }
  return reply;
}

std::string encode(const Call& call) {
  json object = {{"method", call.method}, {"parameters", call.parameters}};
  if (call.more) object["more"] = true;
  if (call.oneway) object["oneway"] = true;
  return encode_frame(dump(object));
}

std::string encode(const Reply& reply) {
  if (reply.error) return encode_error(*reply.error);
  json object = {{"parameters", reply.parameters}};
  if (reply.continues) object["continues"] = true;
  return encode_frame(dump(object));
}

std::string encode_error(const Error& error) {
  return encode_frame(dump(json{{"error", error.name}, {"parameters", error.parameters}}));
}

}  // namespace pat::proto
