#!/usr/bin/env bash
# The Debian package, end to end (README "Debian package"):
#  1. build:     dpkg-buildpackage -us -uc -b on a copy of this tree;
#  2. lintian:   no errors (warnings and the rest are printed);
#  3. root:      a fresh Debian 12 root from Debian's archive (debootstrap);
#  4. install:   the final stage of deploy/container/Containerfile run in that
#                root: its COPY of the package and its RUN lines, as written
#                (with --build-stage, the Containerfile's build stage first
#                runs in a second fresh root, and its package is the one
#                installed: a clean-room check of debian/control's
#                Build-Depends, at the cost of another full build);
#  5. use:       patd started with the image's ENTRYPOINT and CMD; members
#                run as root and as a user of group "pat"; /usr/bin/python3.11
#                imports pat; units, snippets, man pages and libpat in place;
#  6. purge:     apt-get purge leaves nothing of pat behind.
# Prints how long each step took.
#
# Needs root (debootstrap, chroot, mounts), Debian's archive over the
# network, and what scripts/setup.sh installs. Everything happens under
# PACKAGE_BUILD_DIR (default ./build-package); the checkout stays clean. Only
# processes whose root is the new Debian root are ever killed.
#
# usage: scripts/test-package.sh [--keep] [--build-stage]
#   --keep: leave the Debian roots in place
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${PACKAGE_BUILD_DIR:-$repo/build-package}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
keep=false
build_stage=false
for argument in "$@"; do
  case "$argument" in
    --keep) keep=true ;;
    --build-stage) build_stage=true ;;
    *) echo "usage: $0 [--keep] [--build-stage]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "test-package: needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi

version="$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)"
cmake_version="$(sed -n 's/^project(pat VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")"
if [ "$version" != "$cmake_version" ]; then
  echo "test-package: debian/changelog says $version, CMakeLists.txt $cmake_version" >&2
  exit 1
fi
source_dir="$work/pat-$version"
deb="$work/pat_${version}_amd64.deb"
context_dir="$work/context"              # --build-stage: the image's build context
target="$work/debian12-root"              # where the package is installed and used
build_root="$work/debian12-build-root"    # --build-stage: where the image's build stage runs

timings=()
step() {
  local name="$1" started
  shift
  echo "== $name"
  started=$(date +%s)
  "$@"
  timings+=("$(printf '%-8s %5d s' "$name" $(($(date +%s) - started)))")
}

# in_chroot ROOT COMMAND...: with a clean environment, as a container's would be.
in_chroot() {
  local root="$1"
  shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"
}
in_root() { in_chroot "$target" "$@"; }

fail() {
  echo "test-package: FAIL: $*" >&2
  exit 1
}

# --- cleanup: processes in a root, then its mounts -------------------------------

processes_in_root() {
  local root="$1" proc root_link
  [ -d "$root" ] || return 0
  for proc in /proc/[0-9]*; do
    root_link="$(readlink "$proc/root" 2>/dev/null)" || continue
    [ "$root_link" = "$root" ] && echo "${proc#/proc/}"
  done
  return 0
}

unmount_root() {
  local root="$1" pid mount
  for pid in $(processes_in_root "$root"); do kill -KILL "$pid" 2>/dev/null || true; done
  for mount in dev proc; do
    if mountpoint -q "$root/$mount" 2>/dev/null; then umount -l "$root/$mount"; fi
  done
  return 0
}

cleanup() {
  local root
  for root in "$target" "$build_root"; do
    unmount_root "$root"
    if [ "$keep" = false ]; then rm -rf "$root"; fi
  done
}
trap cleanup EXIT

# --- 1. build --------------------------------------------------------------------

# copy_source DIR: this tree's sources, without build trees.
copy_source() {
  local into="$1"
  rm -rf "$into"
  mkdir -p "$into"
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files and new ones not ignored: what a commit of this tree holds.
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
      (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$into"
  else
    tar -C "$repo" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$into"
  fi
}

build_package() {
  rm -f "$work"/pat_"$version"* "$work"/pat-dbgsym_"$version"*
  copy_source "$source_dir"
  # ccache, when there is one, makes a second run cheap (the copy's path is
  # stable, so the compiler's command lines repeat).
  if command -v ccache >/dev/null; then
    export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  fi
  (cd "$source_dir" && DEB_BUILD_OPTIONS="parallel=$(nproc) nocheck" dpkg-buildpackage -us -uc -b) \
    >"$work/dpkg-buildpackage.log" 2>&1 || {
    tail -40 "$work/dpkg-buildpackage.log"
    fail "dpkg-buildpackage (log: $work/dpkg-buildpackage.log)"
  }
  [ -f "$deb" ] || fail "dpkg-buildpackage made no $deb"
  dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
}

# --- 2. lintian ------------------------------------------------------------------

run_lintian() {
  local changes="$work/pat_${version}_amd64.changes" status=0
  lintian --fail-on error --display-info "$changes" >"$work/lintian.txt" 2>&1 || status=$?
  if [ -s "$work/lintian.txt" ]; then cat "$work/lintian.txt"; else echo "lintian: no tags"; fi
  [ "$status" -eq 0 ] || fail "lintian reports errors"
}

# --- 3. a fresh Debian 12 root -----------------------------------------------------

# make_root ROOT
make_root() {
  local target="$1"
  unmount_root "$target"
  rm -rf "$target"
  mkdir -p "$work/debootstrap-cache"
  debootstrap --variant=minbase --cache-dir="$work/debootstrap-cache" bookworm "$target" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log"
    fail "debootstrap (log: $work/debootstrap.log)"
  }
  # The sources of Debian's own bookworm image: the release, its updates and
  # security updates.
  rm -f "$target/etc/apt/sources.list"
  cat >"$target/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cp /etc/resolv.conf "$target/etc/resolv.conf"
  mount -t proc proc "$target/proc"
  mount --bind /dev "$target/dev"
}

# --- 4. the Containerfile's stages, in fresh roots ------------------------------------

# stage_instructions N|last: one Containerfile stage's instructions, one per
# line, continuation lines joined, comments dropped.
stage_instructions() {
  awk -v want="$1" '
    /^FROM /{ n++; if (want == "last") stage = "" }
    n && (want == "last" || n == want) { stage = stage $0 "\n" }
    END { printf "%s", stage }' "$repo/deploy/container/Containerfile" |
    sed -e ':a' -e '/\\$/N; s/\\\n */ /; ta' | grep -v '^[[:space:]]*\(#\|$\)'
}

# run_stage ROOT N|last: the stage's instructions in ROOT. COPY from the
# build context copies from a copy of this tree; COPY --from=build copies
# from the build stage's root (with --build-stage) or takes the package
# built on this machine.
run_stage() {
  local root="$1" stage="$2" instruction argument workdir=/ from source destination
  while IFS= read -r line; do
    instruction="${line%% *}"
    argument="${line#* }"
    case "$instruction" in
      FROM) echo "   ($line: a debootstrapped Debian 12 root stands in for it)" ;;
      COPY)
        read -r -a words <<<"$argument"
        from=""
        if [[ "${words[0]}" == --from=* ]]; then from="${words[0]#--from=}"; words=("${words[@]:1}"); fi
        [ "${#words[@]}" -eq 2 ] || fail "test-package does not know: $line"
        source="${words[0]}" destination="$root${words[1]}"
        mkdir -p "$(dirname "$destination")"
        if [ -z "$from" ]; then
          cp -a "$context_dir/$source" "$destination"
        elif [ "$from" = build ] && [ "$build_stage" = true ]; then
          cp -a "$build_root$source" "$destination"
        elif [ "$from" = build ] && [ "$source" = /out/ ]; then
          mkdir -p "$destination" && cp "$deb" "$destination"
        else
          fail "test-package does not know: $line"
        fi
        ;;
      WORKDIR) workdir="$argument" && mkdir -p "$root$workdir" ;;
      RUN)
        echo "   RUN $argument"
        in_chroot "$root" /bin/sh -ec "cd '$workdir' && $argument" >>"$work/containerfile-run.log" 2>&1 || {
          tail -30 "$work/containerfile-run.log"
          fail "the Containerfile's RUN failed in a fresh Debian 12 root"
        }
        ;;
      VOLUME | ENTRYPOINT | CMD) ;;
      *) fail "test-package does not know: $line" ;;
    esac
  done < <(stage_instructions "$stage")
}

build_as_the_image_does() {
  copy_source "$context_dir"
  make_root "$build_root"
  run_stage "$build_root" 1
  ls "$build_root"/out/pat_*_amd64.deb
}

install_as_the_image_does() {
  : >"$work/containerfile-run.log"
  run_stage "$target" last
  in_root dpkg-query -W -f='   installed ${Package} ${Version}\n' pat
}

# --- 5. use it -------------------------------------------------------------------

# ENTRYPOINT + CMD of the image, as an argv (both are JSON arrays).
image_command() {
  stage_instructions last | /usr/bin/python3.11 -c '
import json, sys
words = {}
for line in sys.stdin:
    instruction, _, argument = line.strip().partition(" ")
    if instruction in ("ENTRYPOINT", "CMD"):
        words[instruction] = json.loads(argument)
print("\n".join(words.get("ENTRYPOINT", []) + words.get("CMD", [])))'
}

expect() {
  local what="$1" expected="$2" got="$3"
  [ "$got" = "$expected" ] || fail "$what: expected '$expected', got '$got'"
  echo "   ok: $what"
}

use_package() {
  local command=() patd_pid
  mapfile -t command < <(image_command)
  echo "   starting the image's command: ${command[*]}"
  chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "${command[@]}" \
    2>"$work/patd.log" &
  patd_pid=$!
  for _ in $(seq 100); do in_root patctl status >/dev/null 2>&1 && break; sleep 0.1; done
  in_root patctl status >/dev/null || { cat "$work/patd.log"; fail "patd does not answer in the root"; }

  expect "a member run by root" "hello from a member" \
    "$(in_root patctl run --new-group -- /bin/echo hello from a member)"
  expect "pat-python finds the pat package" "/usr/bin/pat-python /usr/lib/pat/python/pat/__init__.py" \
    "$(in_root patctl run --new-group -- pat-python -c 'import pat, sys; print(sys.executable, pat.__file__)')"
  expect "/usr/bin/python3.11 imports pat" "/usr/lib/pat/python/pat/__init__.py" \
    "$(in_root python3.11 -c 'import pat, _pat; print(pat.__file__)')"
  # The non-PIC build is installed, unstripped, and members run it while the
  # root's libpython3.11 is the one the package was built against (its
  # Built-Using); otherwise they run pat-python and patctl status names the
  # stale build.
  local built_against root_version exe
  built_against="$(in_root dpkg-query -W -f='${Built-Using}' pat)"
  root_version="python3.11 (= $(in_root dpkg-query -W -f='${source:Version}' libpython3.11))"
  in_root patctl group create pybuild >/dev/null
  exe="$(in_root patctl run --group pybuild -- pat-python -c 'import os; print(os.readlink("/proc/self/exe"))')"
  if [ "$built_against" = "$root_version" ]; then
    expect "a Python member runs the non-PIC build" "/usr/lib/pat/pat-python-nonpic" "$exe"
  else
    echo "   the root's libpython3.11 is $root_version, the package was built against $built_against"
    expect "a Python member runs pat-python (the build is stale)" "/usr/bin/pat-python" "$exe"
    in_root patctl status | grep -q "stale build.*pat-python-nonpic" || fail "patctl status lists no stale build"
  fi
  in_root patctl group destroy pybuild >/dev/null

  # An ordinary user in group "pat" (created by the package's sysusers
  # snippet) reaches the socket (root:pat 0660) and runs a pat.Executor.
  expect "group pat exists" "pat" "$(in_root getent group pat | cut -d: -f1)"
  expect "the socket is root:pat 0660" "root:pat 660" "$(in_root stat -c '%U:%G %a' /run/patd/patd.sock)"
  in_root useradd --create-home --groups pat alice
  expect "pat.Executor in alice's group" "27" \
    "$(in_root setpriv --reuid=alice --regid=alice --init-groups -- env HOME=/home/alice \
      patctl run --new-group --cwd /home/alice -- pat-python -c \
      'import pat; print(pat.Executor(1).submit(pow, 3, 3).result())')"

  local file
  for file in /lib/systemd/system/patd.service /lib/systemd/system/patd.socket \
    /usr/lib/sysusers.d/pat.conf /usr/lib/tmpfiles.d/pat.conf /usr/share/doc/pat/systemd.md \
    /usr/share/bash-completion/completions/patctl /usr/libexec/pat/pat-host \
    /usr/share/man/man1/patctl.1.gz /usr/share/man/man1/pat-python.1.gz /usr/share/man/man7/pat.7.gz \
    /usr/share/man/man8/patd.8.gz /usr/include/pat/pat.h /usr/include/pat/pat.hpp; do
    [ -e "$target$file" ] || fail "missing: $file"
  done
  echo "   ok: units, snippets, completion, man pages, headers in place"
  expect "patd.socket is enabled" "/lib/systemd/system/patd.socket" \
    "$(readlink "$target/etc/systemd/system/sockets.target.wants/patd.socket")"
  [ ! -e "$target/etc/systemd/system/multi-user.target.wants/patd.service" ] ||
    fail "patd.service is enabled; only the socket should be"
  echo "   ok: patd.service is not enabled (the socket starts it)"
  in_root ldconfig -p | grep -q 'libpat.so.0 ' || fail "ldconfig does not know libpat.so.0"
  echo "   ok: libpat.so.0 is known to the dynamic linker"

  kill -TERM "$patd_pid"
  wait "$patd_pid" || fail "patd did not stop cleanly on SIGTERM"
}

# --- 6. purge ------------------------------------------------------------------------

purge_package() {
  local pid
  # Groups outlive patd: end whatever the previous step left in the root.
  for pid in $(processes_in_root "$target"); do kill -KILL "$pid" 2>/dev/null || true; done
  in_root apt-get purge -y -qq pat >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "apt-get purge pat"; }
  local left
  left="$(cd "$target" && ls -d usr/lib/pat usr/lib/python3/dist-packages/pat.pth usr/bin/patd 2>/dev/null || true)"
  [ -z "$left" ] || fail "left behind after purge: $left"
  echo "   ok: nothing of pat left after apt-get purge"
}

mkdir -p "$work"
step build build_package
step lintian run_lintian
step root make_root "$target"
if [ "$build_stage" = true ]; then step image build_as_the_image_does; fi
step install install_as_the_image_does
step use use_package
step purge purge_package

echo "== test-package: passed"
printf '   %s\n' "${timings[@]}"
