// What a build was linked from (proto/elf_note.h, PAT_NOTE_BUILD_INPUTS), and
// whether it still matches what is installed. A build that carries a copy of
// library code (pat-python's non-PIC build carries Debian's libpython3.11.a)
// goes stale when a package update replaces that library: the copy then runs
// against the new standard library, and computes wrong results.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tracer/file_digest.h"

namespace pat::tracer {

struct BuildInputs {
  struct File {
    std::string path;
    std::string sha256_hex;
    bool checked = false;  // a "check" line: must match at launch; else "linked", for the record
  };
  std::optional<std::string> package;  // "NAME VERSION", e.g. "libpython3.11-dev 3.11.2-6+deb12u9"
  std::vector<File> files;
};

// Parses the note's text; the error says which line is wrong.
std::variant<BuildInputs, std::string> parse_build_inputs(std::string_view text);

// Why the build no longer matches the installed files, or nullopt if it
// does: every checked file that exists has its recorded content, and at
// least one exists. A file that is gone proves nothing; one that cannot be
// read counts as changed (the loader then runs the program that always
// works). Hashing costs about 25 ms for libpython3.11.so here, once per
// version of the file and per host (FileDigests remembers).
std::optional<std::string> why_stale(const BuildInputs& inputs, FileDigests& digests);

}  // namespace pat::tracer
