#include "tracer/launch_error.h"

namespace pat::tracer {

const char* to_string(LaunchError::Kind kind) {
  switch (kind) {
    case LaunchError::Kind::NotFound: return "not_found";
    case LaunchError::Kind::NotExecutable: return "not_executable";
    case LaunchError::Kind::AddressConflict: return "address_conflict";
    case LaunchError::Kind::Internal: return "internal";
  }
  return "?";
}

}  // namespace pat::tracer
