// `cmake --install` into a fresh prefix gives working binaries that find
// their helpers relative to themselves: no environment variable, no build
// tree.
#include "tests/support/patd_instance.h"

#include <doctest/doctest.h>

#include <filesystem>

using namespace pat::testing;
namespace fs = std::filesystem;

TEST_CASE("an installed patd, pat-host, patctl and pat-python work from their prefix") {
  RuntimeDirectory scratch;  // reused as the install prefix's parent
  std::string prefix = scratch.path() + "/prefix";
  auto install = run({"cmake", "--install", PAT_BUILD_DIR, "--prefix", prefix});
  INFO(install.out, install.err);
  REQUIRE(install.exit_code == 0);
  for (const char* file : {"bin/patd", "bin/patctl", "bin/pat-python", "libexec/pat/pat-host",
                           "lib/systemd/system/patd.service", "lib/systemd/system/patd.socket",
                           "share/bash-completion/completions/patctl", "lib/pat/python/pat/__init__.py"}) {
    CAPTURE(file);
    CHECK(fs::exists(prefix + "/" + file));
  }
  PatdOptions options;
  options.bin_dir = prefix + "/bin";
  PatdInstance patd(std::make_shared<RuntimeDirectory>(), options);
  REQUIRE(patd.patctl({"group", "create", "installed"}).exit_code == 0);
  auto group = patd.patctl_json({"group", "show", "installed"});
  auto host_exe = fs::read_symlink("/proc/" + std::to_string(group["host_pid"].get<int>()) + "/exe");
  CHECK(host_exe == fs::path(prefix + "/libexec/pat/pat-host"));
  auto run_python = patd.patctl({"run", "-g", "installed", "--", prefix + "/bin/pat-python", "-c",
                                 "import pat, sys; print(sys.executable, pat.__file__)"});
  INFO(run_python.err);
  CHECK(run_python.exit_code == 0);
  CHECK(run_python.out == prefix + "/bin/pat-python " + prefix + "/lib/pat/python/pat/__init__.py\n");
}
