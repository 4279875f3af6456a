// Test support: JSON text nested to a given depth, for the limits on nesting
// (proto/json_text.h). Header only: the unit and the integration tests use it.
#pragma once

#include <cstddef>
#include <string>

namespace pat::testing {

// `depth` arrays, objects ({"a": ...}) or both alternating, around `core`.
enum class JsonShape { Arrays, Objects, Mixed };

inline std::string nested_json(JsonShape shape, std::size_t depth, const std::string& core = "0") {
  std::string open, close;
  for (std::size_t i = 0; i < depth; ++i) {
    bool array = shape == JsonShape::Arrays || (shape == JsonShape::Mixed && i % 2 == 0);
    open += array ? "[" : "{\"a\":";
    close += array ? "]" : "}";
  }
  return open + core + std::string(close.rbegin(), close.rend());
}

inline const char* name_of(JsonShape shape) {
  switch (shape) {
    case JsonShape::Arrays: return "arrays";
    case JsonShape::Objects: return "objects";
    case JsonShape::Mixed: return "mixed";
  }
  return "?";
}

}  // namespace pat::testing
