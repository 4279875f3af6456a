// Result<T>: what a syscall wrapper returns. Either a value, or a SysError that
// carries errno and what was being attempted, so that the error which reaches an
// operator says "open /x: Permission denied", not "error 13".
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace pat {

struct SysError {
  int code = 0;          // errno value
  std::string context;   // what was being attempted, e.g. "pidfd_open 4242"

  std::string message() const;  // "context: strerror(code)"
};

// Captures errno right after a failed call.
inline SysError last_error(std::string context) { return SysError{errno, std::move(context)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(SysError error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  const SysError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, SysError> v_;
};

// For operations that return nothing but may fail.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace pat
