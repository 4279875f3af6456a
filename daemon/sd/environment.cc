#include "daemon/sd/environment.h"

#include <cstdlib>

namespace pat::sd {

std::optional<std::string> take_environment_variable(const char* name) {
  std::optional<std::string> taken;
  if (const char* value = std::getenv(name)) taken = std::string(value);
  ::unsetenv(name);
  return taken;
}

}  // namespace pat::sd
