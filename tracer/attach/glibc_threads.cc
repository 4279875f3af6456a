#include "tracer/attach/glibc_threads.h"

#include <elf.h>
#include <sys/uio.h>

#include <cstring>
#include <string>

#include "tracer/kernel_abi.h"
#include "tracer/remote_memory.h"

namespace pat::tracer {
namespace {

template <class T>
Result<T> read_value(pid_t pid, std::uint64_t at) {
  T value{};
  iovec local{&value, sizeof(T)};
  iovec remote{reinterpret_cast<void*>(at), sizeof(T)};
  if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(T)))
    return SysError{EFAULT, "reading " + std::to_string(pid) + " memory"};
  return value;
}

template <class T>
Status write_value(pid_t pid, std::uint64_t at, const T& value) {
  return write_remote(pid, RemoteAddress{at}, std::string_view(reinterpret_cast<const char*>(&value), sizeof(T)));
}

bool is_glibc(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  return base == "libc.so.6" || (base.rfind("libc-", 0) == 0 && base.size() > 3 && base.compare(base.size() - 3, 3, ".so") == 0);
}

// The GNU symbol hash (the dl_new_hash of the ELF gABI extension, as in
// binutils and glibc's elf/dl-lookup.c).
std::uint32_t gnu_hash(const char* name) {
  std::uint32_t h = 5381;
  for (; *name; ++name) h = h * 33 + static_cast<unsigned char>(*name);
  return h;
}

// The dynamic symbol `name` of the ELF object loaded at `base` in `pid`,
// through its DT_GNU_HASH table. Dynamic entries hold addresses already
// relocated by ld.so (elf/get-dynamic-info.h adds l_addr in place) or, where
// left alone, offsets from base: both are accepted.
Result<std::optional<Elf64_Sym>> lookup_dynamic_symbol(pid_t pid, std::uint64_t base, const char* name) {
  auto ehdr = read_value<Elf64_Ehdr>(pid, base);
  if (!ehdr) return ehdr.error();
  if (std::memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 || ehdr->e_phnum > 64) return SysError{EINVAL, "libc: bad ELF header in memory"};
  std::uint64_t dynamic = 0, dynamic_size = 0, load_bias = base;
  for (int i = 0; i < ehdr->e_phnum; ++i) {
    auto ph = read_value<Elf64_Phdr>(pid, base + ehdr->e_phoff + i * sizeof(Elf64_Phdr));
    if (!ph) return ph.error();
    if (ph->p_type == PT_LOAD && ph->p_offset == 0) load_bias = base - kernel::page_down(ph->p_vaddr);
    if (ph->p_type == PT_DYNAMIC) {
      dynamic = ph->p_vaddr;
      dynamic_size = ph->p_memsz;
    }
  }
  if (dynamic == 0) return std::optional<Elf64_Sym>{};
  std::uint64_t symtab = 0, strtab = 0, gnu_hash_table = 0;
  for (std::uint64_t at = 0; at + sizeof(Elf64_Dyn) <= dynamic_size && at < 64 * 1024; at += sizeof(Elf64_Dyn)) {
    auto dyn = read_value<Elf64_Dyn>(pid, load_bias + dynamic + at);
    if (!dyn) return dyn.error();
    if (dyn->d_tag == DT_NULL) break;
    std::uint64_t address = dyn->d_un.d_ptr < load_bias ? dyn->d_un.d_ptr + load_bias : dyn->d_un.d_ptr;
    if (dyn->d_tag == DT_SYMTAB) symtab = address;
    if (dyn->d_tag == DT_STRTAB) strtab = address;
    if (dyn->d_tag == DT_GNU_HASH) gnu_hash_table = address;
  }
  if (symtab == 0 || strtab == 0 || gnu_hash_table == 0) return std::optional<Elf64_Sym>{};

  struct {
    std::uint32_t nbuckets, symoffset, bloom_size, bloom_shift;
  } header;
  auto h = read_value<decltype(header)>(pid, gnu_hash_table);
  if (!h) return h.error();
  header = h.value();
  if (header.nbuckets == 0) return std::optional<Elf64_Sym>{};
  const std::uint64_t buckets = gnu_hash_table + sizeof(header) + std::uint64_t{header.bloom_size} * 8;
  const std::uint64_t chains = buckets + std::uint64_t{header.nbuckets} * 4;
  const std::uint32_t hash = gnu_hash(name);
  auto bucket = read_value<std::uint32_t>(pid, buckets + (hash % header.nbuckets) * 4);
  if (!bucket) return bucket.error();
  const std::size_t name_len = std::strlen(name);
  for (std::uint32_t index = bucket.value(); index >= header.symoffset && index < (1u << 24); ++index) {
    auto chain_hash = read_value<std::uint32_t>(pid, chains + std::uint64_t{index - header.symoffset} * 4);
    if (!chain_hash) return chain_hash.error();
    if ((chain_hash.value() | 1) == (hash | 1)) {
      auto sym = read_value<Elf64_Sym>(pid, symtab + std::uint64_t{index} * sizeof(Elf64_Sym));
      if (!sym) return sym.error();
      auto sym_name = read_remote_string(pid, RemoteAddress{strtab + sym->st_name}, name_len + 1);
      if (sym_name && sym_name.value() == name) {
        Elf64_Sym found = sym.value();
        found.st_value += load_bias;  // as an address
        return std::optional<Elf64_Sym>{found};
      }
    }
    if (chain_hash.value() & 1) break;  // the last entry of this bucket's chain
  }
  return std::optional<Elf64_Sym>{};
}

}  // namespace

Result<std::optional<std::uint32_t>> glibc_tid_offset(pid_t pid, const std::vector<ProcessMapping>& mappings) {
  for (const auto& m : mappings) {
    if (m.cls != MappingClass::PrivateFile || m.offset != 0 || !is_glibc(m.path)) continue;
    auto sym = lookup_dynamic_symbol(pid, m.range.start, "_thread_db_pthread_tid");
    if (!sym) return sym.error();
    if (!sym.value()) return SysError{ENOENT, m.path + " has no _thread_db_pthread_tid"};
    struct {
      std::uint32_t bits, count, offset;
    } descriptor;
    auto d = read_value<decltype(descriptor)>(pid, sym.value()->st_value);
    if (!d) return d.error();
    descriptor = d.value();
    if (descriptor.bits != 32 || descriptor.count != 1 || descriptor.offset >= 64 * 1024)
      return SysError{EINVAL, m.path + ": unexpected _thread_db_pthread_tid"};
    return std::optional<std::uint32_t>{descriptor.offset};
  }
  return std::optional<std::uint32_t>{};
}

Status update_cached_tid(pid_t pid, std::uint64_t fs_base, std::uint32_t offset, pid_t old_tid, pid_t new_tid) {
  auto current = read_value<pid_t>(pid, fs_base + offset);
  if (!current) return current.error();
  if (current.value() != old_tid)
    return SysError{EINVAL, "the thread control block at " + std::to_string(fs_base) + " holds TID " +
                                std::to_string(current.value()) + ", not " + std::to_string(old_tid)};
  return write_value(pid, fs_base + offset, new_tid);
}

// include/uapi/linux/futex.h: struct robust_list_head { struct robust_list
// list; long futex_offset; struct robust_list *list_op_pending; }, entries
// linked through their first word, whose bit 0 marks a PI futex.
Result<int> update_robust_owners(pid_t pid, std::uint64_t head, pid_t old_tid, pid_t new_tid) {
  if (head == 0) return 0;
  struct {
    std::uint64_t next;
    std::int64_t futex_offset;
    std::uint64_t op_pending;
  } list_head;
  auto h = read_value<decltype(list_head)>(pid, head);
  if (!h) return h.error();
  list_head = h.value();
  int rewritten = 0;
  auto fix = [&](std::uint64_t entry) -> Status {
    std::uint64_t futex = (entry & ~std::uint64_t{1}) + static_cast<std::uint64_t>(list_head.futex_offset);
    auto word = read_value<std::uint32_t>(pid, futex);
    if (!word) return word.error();
    if ((word.value() & kernel::kFutexTidMask) != static_cast<std::uint32_t>(old_tid)) return ok_status();
    std::uint32_t updated = (word.value() & ~kernel::kFutexTidMask) | static_cast<std::uint32_t>(new_tid);
    if (auto s = write_value(pid, futex, updated); !s) return s;
    // glibc's pthread_mutex_t: __lock at 0, __count at 4, __owner at 8
    // (sysdeps/nptl/bits/struct_mutex.h, x86-64).
    auto owner = read_value<pid_t>(pid, futex + 8);
    if (owner && owner.value() == old_tid) (void)write_value(pid, futex + 8, new_tid);
    ++rewritten;
    return ok_status();
  };
  std::uint64_t entry = list_head.next;
  for (int guard = 0; entry != head && entry != 0 && guard < 4096; ++guard) {
    if (auto s = fix(entry); !s) return s.error();
    auto next = read_value<std::uint64_t>(pid, entry & ~std::uint64_t{1});
    if (!next) return next.error();
    entry = next.value();
  }
  if (list_head.op_pending != 0) (void)fix(list_head.op_pending);
  return rewritten;
}

}  // namespace pat::tracer
