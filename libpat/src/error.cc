// pat::Error and the names of pat::Errc: the one error vocabulary of libpat,
// shared by the C++ API, the C ABI (pat_status) and the host's logs.
#include "pat/pat.hpp"

namespace pat {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::NotInGroup: return "not in a pat group";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::OutOfMemory: return "out of arena memory";
    case Errc::TooLarge: return "message too large";
    case Errc::Timeout: return "timed out";
    case Errc::Closed: return "channel closed";
    case Errc::PeerDied: return "peer died";
    case Errc::Interrupted: return "interrupted";
    case Errc::LimitReached: return "limit reached";
    case Errc::ArenaDamaged: return "arena damaged";
    case Errc::SystemError: return "system error";
  }
  return "unknown error";
}

Error::Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}

}  // namespace pat
