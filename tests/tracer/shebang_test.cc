// #! lines parsed like fs/binfmt_script.c, and pat's env shortcut.
#include "tracer/shebang.h"

#include <doctest/doctest.h>

using namespace pat::tracer;

TEST_CASE("interpreter and the optional argument") {
  auto s = parse_shebang("#!/bin/sh\necho hi\n");
  REQUIRE(s);
  CHECK(s->interpreter == "/bin/sh");
  CHECK_FALSE(s->argument);

  s = parse_shebang("#! \t/usr/bin/python3 -u -O  \t\nprint(1)\n");
  REQUIRE(s);
  CHECK(s->interpreter == "/usr/bin/python3");
  CHECK(s->argument == "-u -O");  // one argument: the rest of the line, trailing blanks trimmed

  s = parse_shebang("#!/bin/sh");  // no newline, ends at the end of the file
  REQUIRE(s);
  CHECK(s->interpreter == "/bin/sh");

  s = parse_shebang(std::string("#!/bin/sh\0-x\n", 13));  // a NUL ends the name, and there is no argument
  REQUIRE(s);
  CHECK(s->interpreter == "/bin/sh");
  CHECK_FALSE(s->argument);
}

TEST_CASE("lines the kernel refuses") {
  CHECK_FALSE(parse_shebang("#!\n"));
  CHECK_FALSE(parse_shebang("#!   \t \n"));
  CHECK_FALSE(parse_shebang("#" "/bin/sh\n"));
  CHECK_FALSE(parse_shebang(""));
  // An interpreter name that runs past the 256-byte buffer would be truncated.
  CHECK_FALSE(parse_shebang("#!/" + std::string(300, 'a') + "\n"));
  // ... but a long argument is fine: it is cut, the interpreter re-reads the file.
  auto s = parse_shebang("#!/bin/sh " + std::string(300, 'b') + "\n");
  REQUIRE(s);
  CHECK(s->interpreter == "/bin/sh");
  CHECK(s->argument == std::string(256 - 1 - 10, 'b'));
}

TEST_CASE("argv rewriting: interpreter, argument, script path, then argv[1..]") {
  CHECK(script_argv({"/bin/sh", std::nullopt}, "/tmp/s", {"s", "a", "b"}) == std::vector<std::string>{"/bin/sh", "/tmp/s", "a", "b"});
  CHECK(script_argv({"/usr/bin/perl", "-w"}, "/tmp/s", {"x"}) == std::vector<std::string>{"/usr/bin/perl", "-w", "/tmp/s"});
  CHECK(script_argv({"/bin/sh", std::nullopt}, "/tmp/s", {}) == std::vector<std::string>{"/bin/sh", "/tmp/s"});
}

TEST_CASE("#!/usr/bin/env NAME is taken over only for a plain program name") {
  CHECK(env_program_name({"/usr/bin/env", "python3"}) == "python3");
  CHECK(env_program_name({"/bin/env", "sh"}) == "sh");
  CHECK_FALSE(env_program_name({"/usr/bin/env", std::nullopt}));
  CHECK_FALSE(env_program_name({"/usr/bin/env", "-S python3 -u"}));
  CHECK_FALSE(env_program_name({"/usr/bin/env", "python3 -u"}));
  CHECK_FALSE(env_program_name({"/usr/bin/env", "A=1"}));
  CHECK_FALSE(env_program_name({"/usr/local/bin/env", "python3"}));
}
