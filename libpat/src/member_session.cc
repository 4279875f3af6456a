#include "libpat/src/member_session.h"

#include "pat/pat.hpp"

#include <cassert>

namespace pat::detail {

Holding::Holding(dataplane::MemberSession& session, dataplane::Handle handle)
    : session_(session), handle_(handle) {
  const auto& header = session.buffers().header(handle);
  data_ = session.buffers().data(handle);
  size_ = header.size;
  kind_ = header.kind;
}

Holding::~Holding() { session_.release(handle_); }

}  // namespace pat::detail

namespace pat::dataplane {

MemberSession::MemberSession(const Arena& arena, std::size_t slot, pid_t pid, Unpin unpin)
    : arena_(arena), buffers_(arena), slot_(slot), pid_(pid), unpin_(std::move(unpin)) {}

std::shared_ptr<detail::Holding> MemberSession::adopt(Handle handle) {
  bool extra = false;
  {
    std::lock_guard guard(mutex_);
    auto& uses = uses_[handle];
    if (uses > 0) {
      extra = true;
    } else {
      try {
        HolderSet(arena_, slot()).insert(handle);
      } catch (...) {
        uses_.erase(handle);
        if (buffers_.drop_reference(handle)) buffers_.free(handle, slot(), unpin_);
        throw;
      }
    }
    uses++;
  }
  if (extra) {
    // Recorded already: this member counts once.
    [[maybe_unused]] bool last = buffers_.drop_reference(handle);
    assert(!last);
  }
  return std::make_shared<detail::Holding>(*this, handle);
}

// Removed from the set first, then the count: a member dying in between
// leaks the reference rather than freeing the buffer under someone else.
// Runs in destructors: a heap found damaged leaves the buffer allocated.
void MemberSession::release(Handle handle) noexcept {
  if (disowned()) return;
  {
    std::lock_guard guard(mutex_);
    auto it = uses_.find(handle);
    assert(it != uses_.end() && it->second > 0);
    if (--it->second > 0) return;
    uses_.erase(it);
    HolderSet(arena_, slot()).erase(handle);
  }
  try {
    if (buffers_.drop_reference(handle)) buffers_.free(handle, slot(), unpin_);
  } catch (const Error&) {
    // ArenaDamaged: nothing more can be freed in this group.
  }
}

std::size_t MemberSession::holdings() const {
  std::lock_guard guard(mutex_);
  return uses_.size();
}

}  // namespace pat::dataplane
