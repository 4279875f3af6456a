#include "tracer/attach/process_maps.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "tracer/attach/proc_status.h"

namespace pat::tracer {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

bool starts_with(const std::string& s, std::string_view prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// The kernel names shmem objects that have no path of their own
// (mm/shmem.c, ipc/shm.c, mm/memfd.c): shared anonymous memory shows as
// "/dev/zero (deleted)", SysV segments as "/SYSV<key> (deleted)", memfds as
// "/memfd:<name> (deleted)".
MappingClass classify_mapping(ProcessMapping& m) {
  auto refuse = [&](std::string why) {
    m.refusal_reason = std::move(why);
    return MappingClass::Refused;
  };
  if (m.path == "[vvar]" || m.path == "[vvar_vclock]" || m.path == "[vsyscall]") return MappingClass::NotMoved;
  if (m.path == "[vdso]") return MappingClass::Vdso;
  if (m.flags & (kVmUffdMissing | kVmUffdWp | kVmUffdMinor)) return refuse("registered with userfaultfd, which belongs to the old address space");
  if (m.flags & kVmHugetlb) return refuse("hugetlbfs memory");
  if (m.flags & (kVmIo | kVmPfnMap | kVmMixedMap)) return refuse("device memory (VM_IO/VM_PFNMAP/VM_MIXEDMAP)");
  if (m.flags & kVmShadowStack) return refuse("a shadow stack");
  if (m.flags & kVmDroppable) return refuse("droppable memory (MAP_DROPPABLE)");
  if (m.protection_key != 0) return refuse("memory under protection key " + std::to_string(m.protection_key));
  if (m.path == "[heap]") return MappingClass::Heap;
  if (m.path == "[stack]") return MappingClass::Stack;
  if (!m.path.empty() && m.path[0] == '[') return refuse("special mapping " + m.path);
  if (m.path == "/[aio]") return refuse("an AIO ring (io_setup), which belongs to the old address space");
  if (starts_with(m.path, "anon_inode:")) return refuse("a mapping of " + m.path + " (io_uring, perf or a driver), tied to the old process");
  if (m.inode == 0) {
    // No object: private anonymous memory (mmap'd, or .bss past a file's end).
    if (m.shared) return refuse("shared mapping without an object");
    return MappingClass::PrivateAnonymous;
  }
  if (starts_with(m.path, "/SYSV") && m.deleted) return m.shared ? MappingClass::SysvShm : refuse("private SysV mapping");
  if (m.dev_major == 0 && m.dev_minor == 0) return refuse("mapping of a kernel-internal object " + m.path);
  if (m.flags & kVmDontExpand) return refuse("driver mapping of " + m.path);
  return m.shared ? MappingClass::SharedFile : MappingClass::PrivateFile;
}

}  // namespace

const char* to_string(MappingClass c) {
  switch (c) {
    case MappingClass::PrivateAnonymous: return "private_anonymous";
    case MappingClass::Heap: return "heap";
    case MappingClass::Stack: return "stack";
    case MappingClass::Vdso: return "vdso";
    case MappingClass::NotMoved: return "not_moved";
    case MappingClass::PrivateFile: return "private_file";
    case MappingClass::SharedFile: return "shared_file";
    case MappingClass::SysvShm: return "sysv_shm";
    case MappingClass::Refused: return "refused";
  }
  return "?";
}

bool ProcessMapping::same_backing(const ProcessMapping& o) const {
  if (shared != o.shared || inode != o.inode || dev_major != o.dev_major || dev_minor != o.dev_minor || path != o.path) return false;
  if (cls != o.cls) return false;
  if (inode == 0) return true;  // anonymous: nothing more to compare
  // The file offset of the same address must agree.
  return offset - range.start == o.offset - o.range.start;
}

std::uint32_t parse_vm_flags(const std::string& codes) {
  static const struct {
    const char* code;
    std::uint32_t flag;
  } kCodes[] = {{"mw", kVmMayWrite}, {"gd", kVmGrowsDown},  {"io", kVmIo},          {"pf", kVmPfnMap},
                {"lo", kVmLocked},   {"nr", kVmNoReserve},  {"ht", kVmHugetlb},     {"dc", kVmDontCopy},
                {"dd", kVmDontDump}, {"wf", kVmWipeOnFork}, {"mg", kVmMergeable},   {"hg", kVmHugePage},
                {"nh", kVmNoHugePage}, {"um", kVmUffdMissing}, {"uw", kVmUffdWp},   {"ui", kVmUffdMinor},
                {"ss", kVmShadowStack}, {"sl", kVmSealed},  {"mm", kVmMixedMap},    {"de", kVmDontExpand},
                {"lf", kVmLockOnFault}, {"dp", kVmDroppable}};
  std::uint32_t flags = 0;
  std::istringstream in(codes);
  std::string code;
  while (in >> code) {
    for (const auto& c : kCodes) {
      if (code == c.code) flags |= c.flag;
    }
  }
  return flags;
}

// A mapping's header line: "start-end perms offset major:minor inode   path".
static bool parse_header(const std::string& line, ProcessMapping& m) {
  const char* p = line.c_str();
  char* end;
  m.range.start = std::strtoull(p, &end, 16);
  if (*end != '-') return false;
  m.range.end = std::strtoull(end + 1, &end, 16);
  if (*end != ' ' || std::strlen(end) < 6) return false;
  const char* perms = end + 1;
  m.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
  m.shared = perms[3] == 's';
  m.offset = std::strtoull(perms + 5, &end, 16);
  m.dev_major = static_cast<unsigned>(std::strtoul(end + 1, &end, 16));
  if (*end != ':') return false;
  m.dev_minor = static_cast<unsigned>(std::strtoul(end + 1, &end, 16));
  m.inode = std::strtoull(end + 1, &end, 10);
  while (*end == ' ') ++end;
  m.path = end;
  if (m.path.size() > kDeletedSuffix.size() &&
      m.path.compare(m.path.size() - kDeletedSuffix.size(), kDeletedSuffix.size(), kDeletedSuffix) == 0) {
    m.deleted = true;
    m.path.resize(m.path.size() - kDeletedSuffix.size());
  }
  return true;
}

std::vector<ProcessMapping> parse_smaps(const std::string& text) {
  std::vector<ProcessMapping> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    // Header lines start with a hex address; detail lines with "Key:".
    auto colon = line.find(':');
    auto space = line.find(' ');
    bool detail = colon != std::string::npos && (space == std::string::npos || colon < space);
    if (!detail) {
      ProcessMapping m;
      if (parse_header(line, m)) out.push_back(std::move(m));
      continue;
    }
    if (out.empty()) continue;
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    if (key == "VmFlags") out.back().flags = parse_vm_flags(value);
    else if (key == "ProtectionKey") out.back().protection_key = static_cast<int>(std::strtol(value.c_str(), nullptr, 10));
  }
  for (auto& m : out) m.classify();
  return out;
}

void ProcessMapping::classify() {
  refusal_reason.clear();
  cls = classify_mapping(*this);
}

Result<std::vector<ProcessMapping>> read_process_mappings(pid_t pid) {
  auto text = read_proc_file("/proc/" + std::to_string(pid) + "/smaps");
  if (!text) return text.error();
  return parse_smaps(text.value());
}

Result<std::vector<ProcessMapping>> refresh_process_mappings(pid_t pid, const std::vector<ProcessMapping>& known,
                                                             std::uint32_t ignored_flags) {
  auto text = read_proc_file("/proc/" + std::to_string(pid) + "/maps");
  if (!text) return text.error();
  std::vector<ProcessMapping> now = parse_smaps(text.value());
  for (ProcessMapping& m : now) {
    const ProcessMapping* before = nullptr;
    for (const ProcessMapping& k : known) {
      if (!k.range.overlaps(m.range) || k.shared != m.shared || k.inode != m.inode || k.dev_major != m.dev_major ||
          k.dev_minor != m.dev_minor || k.path != m.path)
        continue;
      if (m.inode != 0 && k.offset - k.range.start != m.offset - m.range.start) continue;
      before = &k;
      break;
    }
    if (before == nullptr) {
      // A new mapping: only smaps knows its flags.
      auto full = read_process_mappings(pid);
      if (!full) return full.error();
      for (ProcessMapping& f : full.value()) {
        f.flags &= ~ignored_flags;
        f.classify();
      }
      return full;
    }
    m.flags = before->flags & ~ignored_flags;
    m.protection_key = before->protection_key;
    m.classify();
  }
  return now;
}

}  // namespace pat::tracer
