#!/usr/bin/python3.11
"""Checks pat's man pages (man/*.scd).

  warnings MAN_DIR PAGE...
      Every PAGE (e.g. patctl.1) was built into MAN_DIR/manN/ and renders
      without a single groff warning (`man --warnings=w`, all of them).
      Exits 77 (a CTest skip) when the pages were not built: scdoc missing.

  coverage SOURCE_DIR PATCTL PATD
      The pages keep up with the programs: every subcommand `patctl --help`
      lists (recursively) has its own "## patctl ..." section under COMMANDS
      in patctl.1.scd, and every option of that subcommand appears in it;
      every global option of patctl appears under GLOBAL OPTIONS; every
      option of `patd --help` appears in patd.8.scd. A subcommand or option
      added to the code without documentation fails here.
"""
import os
import re
import subprocess
import sys

SKIP = 77


def check_warnings(man_dir, pages):
    missing = [p for p in pages if not os.path.exists(page_path(man_dir, p))]
    if len(missing) == len(pages):
        print(f"SKIP: no man pages in {man_dir} (scdoc was not found when configuring)")
        return SKIP
    failures = [f"{p}: not built" for p in missing]
    # The widest and a narrow terminal: line-breaking warnings depend on it.
    for page in pages:
        if page in missing:
            continue
        for width in ("80", "60"):
            env = dict(os.environ, MANWIDTH=width, LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
            run = subprocess.run(["man", "--warnings=w", "-l", page_path(man_dir, page)],
                                 env=env, capture_output=True, text=True)
            if run.returncode != 0 or run.stderr.strip():
                failures.append(f"{page} at MANWIDTH={width}: exit {run.returncode}\n{run.stderr}")
            elif len(run.stdout.splitlines()) < 10:
                failures.append(f"{page}: rendered to almost nothing:\n{run.stdout}")
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print(f"{len(pages)} pages render without warnings")
    return 1 if failures else 0


def page_path(man_dir, page):
    return os.path.join(man_dir, "man" + page.rsplit(".", 1)[1], page)


def cli_help(program, path):
    run = subprocess.run([program, *path, "--help"], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{program} {' '.join(path)} --help: exit {run.returncode}: {run.stderr}")
    return run.stdout


def help_section(text, title):
    """The lines of CLI11's "Title:" section."""
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            inside = line == title + ":"
            continue
        if inside:
            lines.append(line)
    return lines


def options(help_text):
    """Every -x and --long flag of one CLI11 help, --help itself excepted."""
    found = set()
    for line in help_section(help_text, "Options"):
        match = re.match(r"^  (-[^\s]+)", line)
        if match:
            for flag in match.group(1).split(","):
                if flag not in ("-h", "--help"):
                    found.add(flag)
    return found


def subcommands(help_text):
    return [m.group(1) for line in help_section(help_text, "Subcommands")
            if (m := re.match(r"^  ([a-z][a-z-]*)\s", line))]


def scd_sections(text, level, parent=None):
    """{heading: body} of every heading of `level` ("#" or "##"), only those
    under the top-level section `parent` if given."""
    sections, current, in_parent = {}, None, parent is None
    for line in text.splitlines():
        match = re.match(r"^(#+) (.*)$", line)
        if match:
            if match.group(1) == "#" and parent is not None:
                in_parent = match.group(2).strip() == parent
            current = match.group(2).strip() if match.group(1) == level and in_parent else None
            if current is not None:
                sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    return {heading: "\n".join(body) for heading, body in sections.items()}


def documented(flag, text):
    # scdoc bold: *--group*; also accept the flag inside a literal block.
    return f"*{flag}*" in text or re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def check_coverage(source_dir, patctl, patd):
    failures = []
    patctl_page = open(os.path.join(source_dir, "man", "patctl.1.scd")).read()
    command_sections = scd_sections(patctl_page, "##", parent="COMMANDS")
    global_section = scd_sections(patctl_page, "#").get("GLOBAL OPTIONS", "")

    top = cli_help(patctl, [])
    for flag in sorted(options(top)):
        if not documented(flag, global_section):
            failures.append(f"patctl(1) GLOBAL OPTIONS does not mention {flag}")

    checked = 0
    pending = [[name] for name in subcommands(top)]
    while pending:
        path = pending.pop(0)
        text = cli_help(patctl, path)
        nested = subcommands(text)
        if nested:  # a command group such as `patctl group`: its leaves are checked
            pending.extend(path + [name] for name in nested)
            continue
        checked += 1
        heading = "patctl " + " ".join(path)
        body = next((b for h, b in command_sections.items() if h == heading or h.startswith(heading + " ")), None)
        if body is None:
            failures.append(f"patctl(1) has no section \"## {heading} ...\"")
            continue
        for flag in sorted(options(text)):
            if not documented(flag, body):
                failures.append(f"patctl(1) section \"{heading}\" does not mention {flag}")

    patd_page = open(os.path.join(source_dir, "man", "patd.8.scd")).read()
    patd_options = options(cli_help(patd, []))
    for flag in sorted(patd_options):
        if not documented(flag, patd_page):
            failures.append(f"patd(8) does not mention {flag}")

    for failure in failures:
        print("FAIL:", failure)
    if checked == 0 or not patd_options:
        print("FAIL: found no patctl subcommands or no patd options: has CLI11's --help format changed?")
        return 1
    if not failures:
        print(f"patctl(1) covers {checked} subcommands, patd(8) {len(patd_options)} options")
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "warnings":
        return check_warnings(argv[1], argv[2:])
    if len(argv) == 4 and argv[0] == "coverage":
        return check_coverage(*argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
