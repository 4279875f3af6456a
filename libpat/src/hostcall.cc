#include "libpat/src/hostcall.h"

#include "proto/hostcall.h"

#include <sys/prctl.h>

#include <cerrno>

namespace pat::dataplane::hostcall {

namespace {

long call(unsigned long op, unsigned long a = 0, unsigned long b = 0) {
  long rc = ::prctl(PAT_HOSTCALL, op, a, b, 0UL);
  return rc < 0 ? -errno : rc;
}

}  // namespace

long ping() { return call(PAT_HOSTCALL_PING); }

long pin(const void* data, std::size_t size) {
  return call(PAT_HOSTCALL_PIN, reinterpret_cast<unsigned long>(data), size);
}

long unpin(std::uint64_t pin_id) { return call(PAT_HOSTCALL_UNPIN, pin_id); }

}  // namespace pat::dataplane::hostcall
