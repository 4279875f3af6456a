#include "tracer/shebang.h"

#include <array>

#include "tracer/kernel_abi.h"

namespace pat::tracer {
namespace {

bool spacetab(char c) { return c == ' ' || c == '\t'; }

// The helpers of fs/binfmt_script.c, over [first, last] inclusive.
const char* next_non_spacetab(const char* first, const char* last) {
  for (; first <= last; ++first)
    if (!spacetab(*first)) return first;
  return nullptr;
}

const char* next_terminator(const char* first, const char* last) {
  for (; first <= last; ++first)
    if (spacetab(*first) || *first == '\0') return first;
  return nullptr;
}

}  // namespace

bool is_script(std::string_view head) { return head.size() >= 2 && head[0] == '#' && head[1] == '!'; }

std::optional<Shebang> parse_shebang(std::string_view head) {
  if (!is_script(head)) return std::nullopt;
  // The kernel's bprm->buf: the first bytes, NUL-padded when the file is shorter.
  std::array<char, kernel::kBinprmBufSize> buf{};
  head.copy(buf.data(), std::min(head.size(), buf.size()));
  const char* buf_end = buf.data() + buf.size() - 1;

  // Either a newline ends the line (nothing truncated), or a blank/NUL must
  // follow the interpreter name within the buffer; a truncated argument is
  // fine, the interpreter re-reads the script.
  const char* i_end = nullptr;
  for (const char* p = buf.data(); p <= buf_end; ++p) {
    if (*p == '\n') {
      i_end = p;
      break;
    }
  }
  if (i_end == nullptr) {
    i_end = next_non_spacetab(buf.data() + 2, buf_end);
    if (i_end == nullptr) return std::nullopt;  // the whole buffer is blanks
    if (next_terminator(i_end, buf_end) == nullptr) return std::nullopt;  // truncated interpreter name
    i_end = buf_end;
  }
  while (i_end > buf.data() + 2 && spacetab(i_end[-1])) --i_end;  // trailing blanks

  const char* i_name = next_non_spacetab(buf.data() + 2, i_end);
  if (i_name == nullptr || i_name == i_end) return std::nullopt;  // no interpreter name

  // The kernel terminates the line at i_end and the name at its first
  // blank/NUL; the argument is what follows the blanks after the name. With a
  // NUL inside the line, both are cut at the NUL (the kernel uses C strings).
  auto c_string = [](const char* from, const char* to) {
    std::string s(from, to);
    s.resize(std::min(s.size(), s.find('\0')));
    return s;
  };
  Shebang result;
  const char* i_sep = next_terminator(i_name, i_end);
  if (i_sep == nullptr) i_sep = i_end;
  result.interpreter = c_string(i_name, i_sep);
  if (i_sep < i_end && *i_sep != '\0') {
    const char* i_arg = next_non_spacetab(i_sep, i_end);
    if (i_arg != nullptr && i_arg < i_end) result.argument = c_string(i_arg, i_end);
  }
  return result;
}

std::vector<std::string> script_argv(const Shebang& shebang, const std::string& script_path,
                                     const std::vector<std::string>& argv) {
  std::vector<std::string> out{shebang.interpreter};
  if (shebang.argument) out.push_back(*shebang.argument);
  out.push_back(script_path);
  // remove_arg_zero() drops argv[0] only if there is one.
  if (!argv.empty()) out.insert(out.end(), argv.begin() + 1, argv.end());
  return out;
}

std::optional<std::string> env_program_name(const Shebang& shebang) {
  if (shebang.interpreter != "/usr/bin/env" && shebang.interpreter != "/bin/env") return std::nullopt;
  if (!shebang.argument) return std::nullopt;
  const std::string& name = *shebang.argument;
  if (name.empty() || name[0] == '-') return std::nullopt;               // an option for env itself
  if (name.find('=') != std::string::npos) return std::nullopt;          // NAME=VALUE: an assignment
  if (name.find_first_of(" \t") != std::string::npos) return std::nullopt;  // env would look for "a b" literally
  return name;
}

}  // namespace pat::tracer
