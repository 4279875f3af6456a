#include "daemon/host/group_arena.h"

#include "base/log.h"
#include "pat/pat.hpp"

namespace pat::host {

GroupArena::GroupArena(asio::io_context& io, std::string group, tracer::MemberSupervisor& supervisor)
    : group_(std::move(group)), supervisor_(supervisor), retry_(io) {
  try {
    // The unpin callback runs under the group lock (in member_ended(), or in
    // the retry below), as everything that touches the ledger.
    arena_ = dataplane::ArenaHost::create(group_,
                                          [this](std::uint64_t pin) { supervisor_.space().release_pin(pin); });
  } catch (const pat::Error& error) {
    spdlog::warn("event=arena.unavailable group={} reason={}", group_, log_quote(error.what()));
    return;
  }
  // The group's own memory: members may not map over, unmap or pin it.
  tracer::Range range{arena_->address(), arena_->address() + arena_->size()};
  supervisor_.with_space([&](tracer::SharedAddressSpace& space) { space.assign_to_group(range); });
  spdlog::info("event=arena.ready group={} start={} size={}", group_, hex_address(range.start), range.size());
}

std::optional<std::pair<std::string, std::string>> GroupArena::environment() const {
  if (!arena_) return std::nullopt;
  return arena_->environment();
}

void GroupArena::member_started(const tracer::SupervisedMember& member) {
  if (arena_ && !arena_->member_started(member.pid(), member.launched().argv)) {
    spdlog::warn("event=arena.member_table_full group={} pid={}", group_, member.pid());
  }
}

void GroupArena::member_ended(const tracer::SupervisedMember& member) {
  if (arena_ && !arena_->member_ended(member.pid())) retry_later();
}

void GroupArena::retry_later() {
  retry_.expires_after(std::chrono::milliseconds(5));
  retry_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    // Releasing a member's references may release pins in the ledger.
    bool done = supervisor_.with_space([this](tracer::SharedAddressSpace&) { return arena_->retry(); });
    if (!done) retry_later();
  });
}

std::optional<proto::ArenaEntry> GroupArena::stats() const {
  if (!arena_) return std::nullopt;
  auto arena = arena_->stats();
  return proto::ArenaEntry{arena.arena_bytes,
                           arena.members,
                           arena.members_ending,
                           arena.channels,
                           arena.buffers,
                           arena.buffer_bytes,
                           arena.retained_free_bytes,
                           arena.discarded_bytes,
                           arena.owed_frees,
                           arena.allocator_owner_deaths,
                           arena.allocator_damaged};
}

}  // namespace pat::host
