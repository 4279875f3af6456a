#include "base/result.h"

#include <cstring>

namespace pat {

std::string SysError::message() const {
  std::string text = context;
  if (!text.empty()) text += ": ";
  text += std::strerror(code);
  return text;
}

}  // namespace pat
