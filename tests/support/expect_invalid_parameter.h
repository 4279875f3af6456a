// Test support: a call that must be refused with InvalidParameter naming
// `parameter` (and, if given, saying `fragment` in its message).
#pragma once

#include "proto/errors.h"

#include <doctest/doctest.h>

#include <string>

namespace pat::testing {

void expect_invalid_parameter(auto&& fn, const char* parameter, const char* fragment = "") {
  try {
    fn();
    FAIL("no error for ", parameter);
  } catch (const proto::ErrorReply& e) {
    CHECK(e.error().is(proto::ErrorCode::InvalidParameter));
    CHECK(e.error().parameters["parameter"] == parameter);
    CHECK(e.error().message().find(fragment) != std::string::npos);
  }
}

}  // namespace pat::testing
