// The host's table of its members for debuggers, in the host's own memory.
//
// A debugger attached to a member reads /proc/PID/exe and /proc/PID/auxv,
// which are per address space: it finds pat-host and pat-host's link map,
// and shows `??` for every frame of the member. Only the host knows which
// program each member runs and where it was loaded. It publishes that here,
// the way glibc's ld.so publishes its link map in _r_debug: a fixed symbol,
// `pat_debugger_interface`, exported from pat-host's dynamic symbol table
// (so a stripped pat-host keeps it), pointing at one record per member.
// The host shares the group's address space, so every member's memory holds
// the table too, and gdb attached to any member reads it. pat's gdb
// extension (tracer/gdb/pat-host-gdb.py) does, and loads the member's
// program at its load bias; gdb then finds the member's own link map through
// that program's DT_DEBUG. docs/debugging.md has the whole story.
//
// The table changes while debuggers read it (a debugger stops one member,
// never the host), so it is published like a seqlock: `generation` is odd
// while a change is under way; a reader reads it, the table, the strings,
// then `generation` again, and retries if it changed.
//
// The layout is an ABI between pat-host and debugger scripts: version 1 is
// below; change it only by raising `version`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

extern "C" {

struct pat_debug_member {  // 64 bytes
  std::int32_t pid;
  std::uint32_t flags;              // 0 for now
  std::uint64_t program;            // const char*: the file mapped as the program, absolute
  std::uint64_t load_bias;          // added to the program's p_vaddr (0 for ET_EXEC)
  std::uint64_t interpreter_base;   // AT_BASE: ld.so's load address (0: static program)
  std::uint64_t reserved[4];
};

struct pat_debugger_interface_v1 {
  char magic[8];                   // "patdbg1\0"
  std::uint32_t version;           // 1
  std::uint32_t generation;        // odd while the table changes
  std::uint64_t members;           // pat_debug_member[count]
  std::uint32_t count;
  std::uint32_t entry_size;        // sizeof(pat_debug_member)
  std::uint64_t group;             // const char*: the group's name
};

extern pat_debugger_interface_v1 pat_debugger_interface;

}  // extern "C"

namespace pat::tracer {

struct DebugMemberInfo {
  pid_t pid = 0;
  std::string program;
  std::uintptr_t load_bias = 0;
  std::uintptr_t interpreter_base = 0;
};

// The table's only writer. One per process (it owns pat_debugger_interface);
// calls come from one thread at a time.
class DebuggerInterface {
 public:
  explicit DebuggerInterface(const std::string& group);
  ~DebuggerInterface();
  DebuggerInterface(const DebuggerInterface&) = delete;
  DebuggerInterface& operator=(const DebuggerInterface&) = delete;

  void add(const DebugMemberInfo& member);
  void remove(pid_t pid);  // nothing if it is not in the table

 private:
  struct Storage;
  Storage* storage_;
};

}  // namespace pat::tracer
