// What a build was linked from (tracer/build_inputs.h): the note's text, and
// the check against real files, whose digests are recomputed when a file is
// replaced or rewritten, even with its old mtime put back, as dpkg does.
#include "tracer/build_inputs.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/tracer/test_files.h"

using namespace pat::tracer;
using pat::tracer::testing::temp_dir;
using pat::tracer::testing::write_file;

namespace {

// sha256("hello\n") and sha256("")
const std::string kHello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string parse_error(const std::string& text) {
  auto parsed = parse_build_inputs(text);
  REQUIRE(std::holds_alternative<std::string>(parsed));
  return std::get<std::string>(parsed);
}

// Rewrites `path` with `bytes` and gives it back its old mtime, as an
// update through dpkg would leave an older-looking file.
void rewrite_keeping_mtime(const std::string& path, const std::string& bytes) {
  struct stat before;
  REQUIRE(::stat(path.c_str(), &before) == 0);
  write_file(path, bytes, 0644);
  timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

}  // namespace

TEST_CASE("the note's text: a package line and sha256 lines") {
  auto parsed = parse_build_inputs("package libpython3.11-dev 3.11.2-6+deb12u9\nlinked " + kEmpty + " /l.a\ncheck " +
                                   kHello + " /a b/c\n");
  REQUIRE(std::holds_alternative<BuildInputs>(parsed));
  const BuildInputs& inputs = std::get<BuildInputs>(parsed);
  CHECK(inputs.package == "libpython3.11-dev 3.11.2-6+deb12u9");
  REQUIRE(inputs.files.size() == 2);
  CHECK(inputs.files[0].path == "/l.a");
  CHECK_FALSE(inputs.files[0].checked);
  CHECK(inputs.files[1].path == "/a b/c");
  CHECK(inputs.files[1].sha256_hex == kHello);
  CHECK(inputs.files[1].checked);

  CHECK(parse_error("") == "build inputs: no file to check");
  CHECK(parse_error("package p 1\nlinked " + kHello + " /x\n") == "build inputs: no file to check");
  CHECK(parse_error("check " + kHello + " /x") == "build inputs: line 1 without a newline");
  CHECK(parse_error("check " + kHello.substr(1) + " /x\n") == "build inputs: line 1: bad check line");
  CHECK(parse_error("linked " + kHello + " relative\n") == "build inputs: line 1: bad linked line");
  CHECK(parse_error("package p\ncheck " + kHello + " /x\n") == "build inputs: line 1: bad package line");
  CHECK(parse_error("check " + kHello + " /x\nmd5 x /y\n") == "build inputs: line 2: unknown line \"md5\"");
}

TEST_CASE("a build is stale once a file it was linked from changes, even with its old mtime back") {
  const std::string dir = temp_dir();
  const std::string library = dir + "/libpython3.11.so.1.0", gone = dir + "/gone.so", linked = dir + "/libpython3.11.a";
  write_file(library, "hello\n", 0644);
  write_file(linked, "not what was linked\n", 0644);  // only recorded: never compared
  BuildInputs inputs{"libpython3.11-dev 1.0", {{gone, kEmpty, true}, {linked, kEmpty, false}, {library, kHello, true}}};
  FileDigests digests;
  CHECK_FALSE(why_stale(inputs, digests).has_value());  // a missing file proves nothing

  rewrite_keeping_mtime(library, "hellO\n");
  auto stale = why_stale(inputs, digests);
  REQUIRE(stale.has_value());
  CHECK(*stale == library + " has changed since this build was linked (built from libpython3.11-dev 1.0); rebuild pat");

  // Replaced by a new file (dpkg renames one over it) with the old bytes: current again.
  write_file(library + ".new", "hello\n", 0644);
  std::filesystem::rename(library + ".new", library);
  CHECK_FALSE(why_stale(inputs, digests).has_value());

  std::filesystem::remove(library);
  stale = why_stale(inputs, digests);
  REQUIRE(stale.has_value());
  CHECK(*stale == "none of the files this build is checked against exists any more (built from libpython3.11-dev 1.0)");

  // Unreadable (a directory where the file was) counts as changed.
  std::filesystem::create_directory(library);
  stale = why_stale(inputs, digests);
  REQUIRE(stale.has_value());
  CHECK(stale->find("cannot be read to check it") != std::string::npos);
  std::filesystem::remove_all(dir);
}
