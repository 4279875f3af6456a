// `#!` lines: parsed exactly as fs/binfmt_script.c does, and the argv rewrite
// the kernel performs for a script. Pure string handling, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pat::tracer {

struct Shebang {
  std::string interpreter;
  std::optional<std::string> argument;  // the rest of the line, one argument, as the kernel passes it
};

// True if the file's first bytes say it is a script.
bool is_script(std::string_view head);

// Parses a `#!` line from `head`, the file's first bytes (the kernel looks at
// kernel::kBinprmBufSize of them; more are ignored). Returns nothing where the
// kernel returns ENOEXEC: no interpreter name, or a name that does not end
// within the buffer (the kernel refuses to run a truncated interpreter path).
std::optional<Shebang> parse_shebang(std::string_view head);

// argv as the interpreter receives it: interpreter, optional argument, the
// script's path (replacing argv[0]), then argv[1..].
std::vector<std::string> script_argv(const Shebang& shebang, const std::string& script_path,
                                     const std::vector<std::string>& argv);

// pat's one departure from the kernel: `#!/usr/bin/env NAME` (or /bin/env)
// with a single program name and no option would make env exec NAME, taking
// the member out of the shared address space. We return NAME so the caller
// can resolve it through PATH and load it directly, as env would have run it.
// Anything env would treat specially (an option, a NAME=VALUE assignment, a
// name with blanks, which only `env -S` could split) gets nothing: env runs as
// itself.
std::optional<std::string> env_program_name(const Shebang& shebang);

}  // namespace pat::tracer
