// Unit tests of tracer/attach/'s pieces that need no second process: the
// /proc parsers, the wait-status decoding, the vdso proxy (built and called
// in this process), glibc's TID field and robust-list rewriting (on this
// process's own threads), pagemap and soft-dirty on our own memory; and,
// with a forked child, the write tracker and the kernel behaviour the
// in-place exec would rely on.
#include <doctest/doctest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <optional>
#include <vector>

#include "tracer/attach/fd_transfer.h"
#include "tracer/attach/glibc_threads.h"
#include "tracer/attach/injected_syscalls.h"
#include "tracer/attach/seized_process.h"
#include "tracer/attach/write_tracker.h"
#include "tracer/attach/page_map.h"
#include "tracer/attach/proc_status.h"
#include "tracer/attach/process_maps.h"
#include "tracer/attach/tracee_wait.h"
#include "tracer/attach/vdso_proxy.h"

using namespace pat::tracer;

TEST_CASE("smaps: every kind of mapping gets its class, flags and path") {
  const char* text =
      "55d0c0000000-55d0c0002000 r--p 00000000 fe:00 1234                       /usr/bin/prog with space\n"
      "VmFlags: rd mr mw me\n"
      "55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]\n"
      "VmFlags: rd wr mr mw me ac\n"
      "7f0000000000-7f0000010000 rw-s 00000000 00:01 4242                       /dev/zero (deleted)\n"
      "VmFlags: rd wr sh mr mw me ms\n"
      "7f0000010000-7f0000020000 rw-s 00000000 00:01 77                         /memfd:cache (deleted)\n"
      "7f0000020000-7f0000030000 rw-s 00000000 00:01 65539                      /SYSV00000000 (deleted)\n"
      "7f0000030000-7f0000031000 rw-p 00000000 00:00 0 \n"
      "VmFlags: rd wr mr mw me ac dc dd um\n"
      "7f0000040000-7f0000044000 rw-s 00000000 00:0e 99                         anon_inode:[io_uring]\n"
      "7f0000050000-7f0000051000 rw-p 00000000 00:00 0                          [vvar]\n"
      "7f0000051000-7f0000053000 r-xp 00000000 00:00 0                          [vdso]\n"
      "7f0000060000-7f0000061000 rw-p 00000000 00:00 0 \n"
      "ProtectionKey:         3\n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
      "VmFlags: rd wr mr mw me gd ac\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
  auto maps = parse_smaps(text);
  REQUIRE(maps.size() == 12);
  CHECK(maps[0].cls == MappingClass::PrivateFile);
  CHECK(maps[0].path == "/usr/bin/prog with space");
  CHECK(maps[0].prot == PROT_READ);
  CHECK(maps[0].inode == 1234);
  CHECK(maps[0].dev_major == 0xfe);
  CHECK((maps[0].flags & kVmMayWrite) != 0);
  CHECK(maps[1].cls == MappingClass::Heap);
  CHECK(maps[2].cls == MappingClass::SharedFile);
  CHECK(maps[2].deleted);
  CHECK(maps[2].path == "/dev/zero");
  CHECK(maps[3].cls == MappingClass::SharedFile);
  CHECK(maps[4].cls == MappingClass::SysvShm);
  CHECK(maps[5].cls == MappingClass::Refused);  // userfaultfd
  CHECK(maps[5].refusal_reason.find("userfaultfd") != std::string::npos);
  CHECK((maps[5].flags & (kVmDontCopy | kVmDontDump)) == (kVmDontCopy | kVmDontDump));
  CHECK(maps[6].cls == MappingClass::Refused);  // io_uring
  CHECK(maps[7].cls == MappingClass::NotMoved);
  CHECK(maps[8].cls == MappingClass::Vdso);
  CHECK(maps[9].cls == MappingClass::Refused);  // protection key
  CHECK(maps[10].cls == MappingClass::Stack);
  CHECK((maps[10].flags & kVmGrowsDown) != 0);
  CHECK(maps[11].cls == MappingClass::NotMoved);
}

TEST_CASE("smaps of this process: our own program, heap or anonymous memory, vdso and stack") {
  auto maps = read_process_mappings(::getpid());
  REQUIRE(maps);
  int vdso = 0, stack = 0, files = 0;
  for (const auto& m : maps.value()) {
    vdso += m.cls == MappingClass::Vdso;
    stack += m.cls == MappingClass::Stack;
    files += m.cls == MappingClass::PrivateFile;
    CHECK(m.range.start < m.range.end);
  }
  CHECK(vdso == 1);
  CHECK(stack == 1);
  CHECK(files > 3);
}

TEST_CASE("status and stat: fields as the kernel writes them") {
  ProcStatus s = parse_proc_status(
      "Name:\tmy prog\nUmask:\t0027\nState:\tS (sleeping)\nTgid:\t10\nPid:\t11\nPPid:\t1\nTracerPid:\t0\n"
      "Uid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2000\t2000\t2000\nGroups:\t27 4 \nKthread:\t0\nThreads:\t3\n"
      "SigPnd:\t0000000000000000\nShdPnd:\t0000000000000200\nSigBlk:\t0000000000010000\nSigIgn:\t0000000000001000\n"
      "SigCgt:\t0000000180004002\nCapPrm:\t0000000000000400\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nRssAnon:\t  2048 kB\n");
  CHECK(s.name == "my prog");
  CHECK(s.umask == 027);
  CHECK(s.state == 'S');
  CHECK(s.tgid == 10);
  CHECK(s.pid == 11);
  CHECK(s.uids == std::array<uid_t, 4>{1000, 1001, 1002, 1003});
  CHECK(s.groups == std::vector<gid_t>{4, 27});
  CHECK(s.threads == 3);
  CHECK(s.shared_pending == 0x200);
  CHECK(s.sig_caught == 0x180004002ull);
  CHECK(s.cap_permitted == 0x400);
  CHECK(s.no_new_privs);
  CHECK(s.seccomp_mode == 2);
  CHECK(s.rss_anon_bytes == 2048 * 1024);

  std::string stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0 18446744073709551615 "
                     "4194304 4198400 140737488346112 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 6291456 6295552 7340032 "
                     "140737488347000 140737488347100 140737488347100 140737488347200 0\n";
  auto layout = parse_proc_stat_layout(stat);
  REQUIRE(layout);
  CHECK(layout->start_code == 4194304);
  CHECK(layout->start_data == 6291456);
  CHECK(layout->end_data == 6295552);
  CHECK(layout->start_brk == 7340032);
  CHECK(layout->arg_start == 140737488347000ull);
  CHECK_FALSE(parse_proc_stat_layout("12 (short) S 1 2 3"));
}

TEST_CASE("wait statuses decode to exactly one meaning") {
  CHECK(std::get<Exited>(decode_wait_status(3 << 8, false)).code == 3);
  CHECK(std::get<Killed>(decode_wait_status(SIGKILL, false)).signal == SIGKILL);
  CHECK(std::get<Killed>(decode_wait_status(0x80 | SIGSEGV, true)).core_dumped);
  CHECK(std::get<JobStop>(decode_wait_status((SIGTSTP << 8) | 0x7f, false)).signal == SIGTSTP);
  CHECK(std::holds_alternative<Continued>(decode_wait_status(0xffff, false)));
  auto stop = [](int raw) { return std::get<TraceStop>(decode_wait_status(raw, true)); };
  CHECK(stop((SIGUSR1 << 8) | 0x7f).kind == TraceStop::Kind::SignalDelivery);
  CHECK(stop((SIGUSR1 << 8) | 0x7f).signal == SIGUSR1);
  CHECK(stop(((SIGTRAP | 0x80) << 8) | 0x7f).kind == TraceStop::Kind::Syscall);
  CHECK(stop(((SIGTRAP | (PTRACE_EVENT_STOP << 8)) << 8) | 0x7f).kind == TraceStop::Kind::Interrupt);
  CHECK(stop(((SIGSTOP | (PTRACE_EVENT_STOP << 8)) << 8) | 0x7f).kind == TraceStop::Kind::GroupStop);
  CHECK(stop(((SIGTRAP | (PTRACE_EVENT_EXEC << 8)) << 8) | 0x7f).kind == TraceStop::Kind::Event);
  CHECK(stop(((SIGTRAP | (PTRACE_EVENT_EXEC << 8)) << 8) | 0x7f).event == PTRACE_EVENT_EXEC);
  CHECK(describe(decode_wait_status(SIGKILL, false)) == "killed by KILL");
  CHECK(is_gone(decode_wait_status(0, false)));
}

TEST_CASE("a vdso proxy built from our own vdso answers clock_gettime through the real one") {
  const auto base = getauxval(AT_SYSINFO_EHDR);
  REQUIRE(base != 0);
  std::size_t size = 0;
  auto maps = read_process_mappings(::getpid());
  REQUIRE(maps);
  for (const auto& m : maps.value()) {
    if (m.cls == MappingClass::Vdso) size = m.range.size();
  }
  REQUIRE(size > 0);
  std::vector<std::uint8_t> image(reinterpret_cast<const std::uint8_t*>(base), reinterpret_cast<const std::uint8_t*>(base) + size);
  auto functions = vdso_functions(image.data(), image.size());
  REQUIRE(functions);
  std::uint64_t offset = 0;
  for (const auto& f : functions.value()) {
    if (f.name == "__vdso_clock_gettime") offset = f.offset;
  }
  REQUIRE(offset != 0);
  REQUIRE(make_vdso_proxy(image, reinterpret_cast<const std::uint8_t*>(base), size, base));
  void* proxy = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(proxy != MAP_FAILED);
  std::memcpy(proxy, image.data(), size);
  REQUIRE(::mprotect(proxy, size, PROT_READ | PROT_EXEC) == 0);
  auto through_proxy = reinterpret_cast<int (*)(clockid_t, timespec*)>(static_cast<char*>(proxy) + offset);
  timespec direct{}, proxied{};
  ::clock_gettime(CLOCK_MONOTONIC, &direct);
  REQUIRE(through_proxy(CLOCK_MONOTONIC, &proxied) == 0);
  CHECK(proxied.tv_sec >= direct.tv_sec);
  CHECK(proxied.tv_sec - direct.tv_sec < 5);
  ::munmap(proxy, size);
}

TEST_CASE("glibc's TID field is where _thread_db_pthread_tid says, and robust owners can be rewritten") {
  auto maps = read_process_mappings(::getpid());
  REQUIRE(maps);
  auto offset = glibc_tid_offset(::getpid(), maps.value());
  REQUIRE(offset);
  REQUIRE(offset.value());
  const auto tcb = reinterpret_cast<std::uint64_t>(pthread_self());  // glibc: the TCB is the thread pointer
  const pid_t me = static_cast<pid_t>(::syscall(SYS_gettid));
  pid_t cached = 0;
  std::memcpy(&cached, reinterpret_cast<const void*>(tcb + *offset.value()), sizeof(cached));
  CHECK(cached == me);
  CHECK_FALSE(update_cached_tid(::getpid(), tcb, *offset.value(), me + 1, me + 2));  // must hold the old TID

  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t mutex;
  pthread_mutex_init(&mutex, &attr);
  REQUIRE(pthread_mutex_lock(&mutex) == 0);
  void* head = nullptr;
  std::size_t len = 0;
  REQUIRE(::syscall(SYS_get_robust_list, 0, &head, &len) == 0);
  auto rewritten = update_robust_owners(::getpid(), reinterpret_cast<std::uint64_t>(head), me, 4000000);
  REQUIRE(rewritten);
  CHECK(rewritten.value() == 1);
  CHECK((mutex.__data.__lock & 0x3fffffff) == 4000000);
  CHECK(mutex.__data.__owner == 4000000);
  REQUIRE(update_robust_owners(::getpid(), reinterpret_cast<std::uint64_t>(head), 4000000, me));
  CHECK(pthread_mutex_unlock(&mutex) == 0);
  pthread_mutex_destroy(&mutex);
}

TEST_CASE("pagemap tells which pages hold data") {
  const std::size_t page = 4096;
  auto* p = static_cast<char*>(::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  p[0] = 1;
  p[2 * page] = 1;
  auto map = PageMap::open(::getpid());
  REQUIRE(map);
  const Range range{reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(p) + 4 * page};
  auto entries = map->read(range);
  REQUIRE(entries);
  CHECK(entries.value()[0].populated());
  CHECK_FALSE(entries.value()[1].populated());
  CHECK(entries.value()[2].populated());
  CHECK_FALSE(entries.value()[0].file_or_shared());
  auto runs = page_runs(range, entries.value(), [](const PageEntry& e, std::size_t) { return e.populated(); });
  REQUIRE(runs.size() == 2);
  CHECK(runs[0] == Range{range.start, range.start + page});
  ::munmap(p, 4 * page);
}

TEST_CASE("a write tracker set up in another process reports exactly the pages it writes") {
  const std::size_t page = 4096;
  auto* p = static_cast<char*>(::mmap(nullptr, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(p != MAP_FAILED);
  std::memset(p, 1, 8 * page);
  int commands[2];
  REQUIRE(::pipe(commands) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    // Writes the page whose number it reads; blocked in read(2) otherwise.
    ::close(commands[1]);
    char n;
    while (::read(commands[0], &n, 1) == 1) p[n * page] = 2;
    ::_exit(0);
  }
  ::close(commands[0]);
  auto userfaultfds = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(child) + "/fd"))
      n += std::filesystem::read_symlink(e.path()).string() == "anon_inode:[userfaultfd]";
    return n;
  };
  auto gadget = find_syscall_gadget(child);
  REQUIRE(gadget);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::optional<WriteTracker> tracker;
  {
    auto seized = SeizedProcess::seize(child, deadline);
    REQUIRE(seized);
    auto started = WriteTracker::start(seized.value(), gadget.value(), deadline);
    REQUIRE_MESSAGE(started, started.error().message());
    tracker.emplace(std::move(started.value()));
  }
  const Range range{reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(p) + 8 * page};
  REQUIRE(tracker->track(range));
  CHECK(tracker->tracks(Range{range.start + page, range.start + 2 * page}));
  for (char n : {2, 5}) REQUIRE(::write(commands[1], &n, 1) == 1);
  auto written = [&] {
    std::vector<Range> all;
    for (int i = 0; i < 100; ++i) {  // the child writes when it gets to it
      auto got = tracker->written(range, true);
      REQUIRE(got);
      all.insert(all.end(), got->begin(), got->end());
      if (all.size() >= 2) break;
      ::usleep(10000);
    }
    return all;
  }();
  REQUIRE(written.size() == 2);
  CHECK(written[0] == Range{range.start + 2 * page, range.start + 3 * page});
  CHECK(written[1] == Range{range.start + 5 * page, range.start + 6 * page});
  auto quiet = tracker->written(range, true);
  REQUIRE(quiet);
  CHECK(quiet->empty());
  // The userfaultfd is ours alone: the child's fd table does not keep it.
  CHECK(userfaultfds() == 0);
  ::close(commands[1]);
  int status;
  ::waitpid(child, &status, 0);
  ::munmap(p, 8 * page);
}

TEST_CASE("descriptors that cannot move are named") {
  CHECK(fd_refusal("anon_inode:[io_uring]").value().find("io_uring") != std::string::npos);
  CHECK(fd_refusal("anon_inode:[userfaultfd]"));
  CHECK(fd_refusal("anon_inode:[perf_event]"));
  CHECK(fd_refusal("anon_inode:kvm-vm"));
  CHECK(fd_refusal("anon_inode:[some_driver]").value().find("unknown") != std::string::npos);
  CHECK_FALSE(fd_refusal("anon_inode:[eventpoll]"));
  CHECK_FALSE(fd_refusal("anon_inode:[timerfd]"));
  CHECK_FALSE(fd_refusal("socket:[1234]"));
  CHECK_FALSE(fd_refusal("/dev/pts/3"));
  CHECK_FALSE(fd_refusal("pipe:[99]"));
}

namespace {

// The new program of the in-place exec test: reached only through the
// registers the tracer sets.
[[noreturn]] void replaced_image_entry() { ::_exit(42); }

}  // namespace

// The kernel behaviour the in-place exec of a member relies on (docs/attach.md
// "exec stays in the group"): a thread waiting in a seccomp user notification
// under SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (as every member's does) does
// not stop for PTRACE_INTERRUPT while it waits; answered, it stops in the
// interrupt's trap (PTRACE_EVENT_STOP) before returning to user mode, with the
// answer in rax, and its registers set there take effect: the same PID runs
// other code, and the execve never happened.
TEST_CASE("a thread held in an execve notification can be answered and redirected at the interrupt stop") {
  int report[2];
  REQUIRE(::pipe(report) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    // Only execve is notified; everything else is allowed.
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execve, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(1);
    long listener = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                              SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &program);
    if (listener < 0) ::_exit(2);
    int fd = static_cast<int>(listener);
    if (::write(report[1], &fd, sizeof(fd)) != sizeof(fd)) ::_exit(3);
    const char* argv[] = {"true", nullptr};
    ::syscall(SYS_execve, "/bin/true", argv, nullptr);
    ::_exit(4);  // the notification was answered without a redirection
  }
  ::close(report[1]);
  int child_listener = -1;
  REQUIRE(::read(report[0], &child_listener, sizeof(child_listener)) == sizeof(child_listener));
  ::close(report[0]);
  pat::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  REQUIRE(pidfd);
  pat::UniqueFd listener(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), child_listener, 0)));
  REQUIRE(listener);
  seccomp_notif notification{};
  REQUIRE(::ioctl(listener.get(), SECCOMP_IOCTL_NOTIF_RECV, &notification) == 0);
  CHECK(notification.data.nr == SYS_execve);

  REQUIRE(::ptrace(PTRACE_SEIZE, child, 0, PTRACE_O_EXITKILL) == 0);
  REQUIRE(::ptrace(PTRACE_INTERRUPT, child, 0, 0) == 0);
  int status = 0;
  ::usleep(50'000);
  CHECK(::waitpid(child, &status, WNOHANG | __WALL) == 0);  // still waiting for the answer

  seccomp_notif_resp answer{};
  answer.id = notification.id;
  answer.val = 0;
  REQUIRE(::ioctl(listener.get(), SECCOMP_IOCTL_NOTIF_SEND, &answer) == 0);
  REQUIRE(::waitpid(child, &status, __WALL) == child);
  REQUIRE(WIFSTOPPED(status));
  const int event = status >> 16;
  CHECK(event == PTRACE_EVENT_STOP);
  user_regs_struct regs{};
  REQUIRE(::ptrace(PTRACE_GETREGS, child, 0, &regs) == 0);
  CHECK(regs.rax == 0);
  CHECK(regs.orig_rax == SYS_execve);
  regs.rip = reinterpret_cast<std::uintptr_t>(&replaced_image_entry);
  regs.rsp = (regs.rsp & ~std::uint64_t{15}) - 8;  // as after a call
  regs.orig_rax = static_cast<std::uint64_t>(-1);  // no syscall to restart
  REQUIRE(::ptrace(PTRACE_SETREGS, child, 0, &regs) == 0);
  REQUIRE(::ptrace(PTRACE_DETACH, child, 0, 0) == 0);
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
}
