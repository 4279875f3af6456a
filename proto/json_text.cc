#include "proto/json_text.h"

namespace pat::proto {

namespace {

using nlohmann::json;

// nlohmann's own DOM builder (what json::parse uses), with a count of the
// open arrays and objects in front of it. Returning false from a SAX event
// stops the parser at once: nothing deeper than the limit is ever built.
class DepthLimitedBuilder {
 public:
  explicit DepthLimitedBuilder(json& root) : dom_(root, /*allow_exceptions=*/false) {}

  bool null() { return dom_.null(); }
  bool boolean(bool value) { return dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) { return dom_.number_integer(value); }
  bool number_unsigned(json::number_unsigned_t value) { return dom_.number_unsigned(value); }
  bool number_float(json::number_float_t value, const json::string_t& text) { return dom_.number_float(value, text); }
  bool string(json::string_t& value) { return dom_.string(value); }
  bool binary(json::binary_t& value) { return dom_.binary(value); }
  bool key(json::string_t& value) { return dom_.key(value); }
  bool start_object(std::size_t size) { return enter() && dom_.start_object(size); }
  bool end_object() { return leave() && dom_.end_object(); }
  bool start_array(std::size_t size) { return enter() && dom_.start_array(size); }
  bool end_array() { return leave() && dom_.end_array(); }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& error) {
    error_position_ = position;
    return dom_.parse_error(position, token, error);
  }

  bool too_deep() const { return too_deep_; }
  std::size_t error_position() const { return error_position_; }

 private:
  bool enter() {
    if (depth_ == kMaxJsonDepth) {
      too_deep_ = true;
      return false;
    }
    ++depth_;
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t depth_ = 0;
  bool too_deep_ = false;
  std::size_t error_position_ = 0;
};

}  // namespace

std::variant<json, JsonRejection> parse_json_text(std::string_view text) {
  json root;
  DepthLimitedBuilder builder(root);
  bool complete = json::sax_parse(text, &builder, json::input_format_t::json, /*strict=*/true);
  if (builder.too_deep()) {
    return JsonRejection{JsonRejection::Why::TooDeep,
                         "nested deeper than " + std::to_string(kMaxJsonDepth) + " arrays and objects"};
  }
  if (!complete) {
    return JsonRejection{JsonRejection::Why::Syntax,
                         "not valid JSON (error at byte " + std::to_string(builder.error_position()) + ")"};
  }
  return root;
}

}  // namespace pat::proto
