// Arena: one data-plane arena as this process sees it — where its parts are
// (arena_layout.h), formatting a fresh one (the host, once, before any member
// starts) and checking one that someone else formatted (a member attaching).
// It owns nothing: the mapping belongs to the host (pat/host/arena_host.h), and every
// member sees it at the same address because members share the mm.
#pragma once

#include "libpat/src/arena_layout.h"

#include <sys/types.h>

#include <cstddef>
#include <string_view>

namespace pat::dataplane {

class Arena {
 public:
  // The smallest arena that holds the fixed tables and a usable heap.
  static std::size_t minimum_bytes();

  // Lays out an all-zero region at `base` (page-aligned, `bytes` long). The
  // magic is written last, so a half-formatted arena is never taken for one.
  static Arena format(void* base, std::size_t bytes, std::string_view group_name, pid_t host_pid);
  // Checks the header of an arena formatted by someone else (same layout
  // version, same size). Throws pat::Error(NotInGroup) when it is not one.
  static Arena attach(void* base, std::size_t bytes);

  ArenaHeader& header() const { return *reinterpret_cast<ArenaHeader*>(base_); }
  MemberSlot& member(std::size_t index) const;
  ChannelTable& channels() const { return *at<ChannelTable>(header().directory_offset); }
  void* heap() const { return base_ + header().heap_offset; }

  template <class T>
  T* at(Offset offset) const {
    return reinterpret_cast<T*>(base_ + offset);
  }
  Offset offset_of(const void* address) const {
    return static_cast<Offset>(static_cast<const std::byte*>(address) - base_);
  }
  // Whether [address, address + length) lies inside the arena.
  bool contains(const void* address, std::size_t length) const;
  // A handle that may name a buffer: inside the heap, header-aligned.
  bool plausible_handle(Handle handle) const;

  std::byte* base() const { return base_; }
  std::size_t size() const { return bytes_; }

 private:
  Arena(std::byte* base, std::size_t bytes) : base_(base), bytes_(bytes) {}
  std::byte* base_;
  std::size_t bytes_;
};

}  // namespace pat::dataplane
