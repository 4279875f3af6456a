#!/usr/bin/env bash
# Checks pat's systemd files the way systemd itself reads them:
#   1. `systemd-analyze verify` on patd.service and patd.socket, configured
#      for a scratch prefix whose bin/patd is a stub (see tests/sd/
#      CMakeLists.txt for why); any line it prints about our units fails;
#   2. a negative control: the same command must flag a deliberately broken
#      copy, or its silence in step 1 would prove nothing;
#   3. the install rules: `cmake --install --component systemd` with DESTDIR
#      puts every file where systemd looks, with the content verified in 1;
#   4. the sysusers.d and tmpfiles.d snippets, applied by systemd-sysusers and
#      systemd-tmpfiles to a scratch root.
# systemd need not be running (PID 1 may be anything): systemd-analyze verify
# runs its own manager in test mode. Exit 77 (CTest's SKIP_RETURN_CODE) when
# the systemd tools are not installed at all.
#
# Usage: check_systemd_files.sh VERIFY_ROOT VERIFY_BINDIR VERIFY_DOCDIR
#            BUILD_DIR CMAKE INSTALL_PREFIX REAL_BINDIR REAL_DOCDIR
set -euo pipefail

verify_root=$1 verify_bindir=$2 verify_docdir=$3
build_dir=$4 cmake=$5 install_prefix=$6 real_bindir=$7 real_docdir=$8
unit_dir=lib/systemd/system

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not installed (Debian package 'systemd'; scripts/setup.sh installs it)"
    exit 77
  fi
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# --- 1. systemd-analyze verify -------------------------------------------------
units=("$verify_root/$unit_dir/patd.service" "$verify_root/$unit_dir/patd.socket")
set +e
output=$(systemd-analyze verify "${units[@]}" 2>&1)
status=$?
set -e
echo "systemd-analyze verify (exit $status), $(systemd-analyze --version | head -n1), PID 1 is $(cat /proc/1/comm):"
if [ -n "$output" ]; then
  while IFS= read -r line; do
    # A line about our units or files is a finding. Anything else comes from
    # this machine (another unit's syntax, the container): shown, not hidden,
    # but not pat's to fix.
    if [[ $line == *patd.service* || $line == *patd.socket* || $line == *"$verify_root"* ]]; then
      fail "verify: $line"
    else
      echo "  note (about this machine, not pat's units): $line"
    fi
  done <<<"$output"
else
  echo "  (no output: no warnings)"
fi
[ "$status" -eq 0 ] || fail "systemd-analyze verify exited with $status"

# --- 2. negative control ---------------------------------------------------------
control=$scratch/control
mkdir -p "$control"
cp "${units[@]}" "$control/"
sed -i 's/^\[Service\]$/[Service]\nPatNoSuchDirective=1/' "$control/patd.service"
control_output=$(systemd-analyze verify "$control/patd.service" "$control/patd.socket" 2>&1 || true)
if [[ $control_output != *PatNoSuchDirective* ]]; then
  fail "negative control: verify did not flag an unknown directive, so step 1 proves nothing. It said: $control_output"
fi

# --- 3. install rules -----------------------------------------------------------
destdir=$scratch/destdir
DESTDIR=$destdir "$cmake" --install "$build_dir" --component systemd >/dev/null
installed=$destdir$install_prefix
for file in "$unit_dir/patd.service" "$unit_dir/patd.socket" lib/sysusers.d/pat.conf \
            lib/tmpfiles.d/pat.conf; do
  [ -f "$installed/$file" ] || fail "install: $install_prefix/$file missing"
done
[ -f "$destdir$real_docdir/systemd.md" ] || fail "install: $real_docdir/systemd.md missing"
# What was installed is what was verified, but for the prefix.
for unit in patd.service patd.socket; do
  expected=$(sed -e "s|$verify_bindir|$real_bindir|g" -e "s|$verify_docdir|$real_docdir|g" \
             "$verify_root/$unit_dir/$unit")
  if [ "$expected" != "$(cat "$installed/$unit_dir/$unit" 2>/dev/null)" ]; then
    fail "install: $unit differs from the verified copy beyond the prefix"
  fi
done
grep -qx "ExecStart=$real_bindir/patd --runtime-dir /run/patd" "$installed/$unit_dir/patd.service" ||
  fail "install: ExecStart= does not name $real_bindir/patd"

# --- 4. sysusers.d and tmpfiles.d -------------------------------------------------
root=$scratch/root
mkdir -p "$root/etc"
if ! out=$(systemd-sysusers --root="$root" "$installed/lib/sysusers.d/pat.conf" 2>&1); then
  fail "systemd-sysusers: $out"
fi
grep -q '^pat:x:[0-9]*:$' "$root/etc/group" 2>/dev/null || fail "systemd-sysusers did not create group pat"
if [ "$(id -u)" -eq 0 ]; then
  if ! out=$(systemd-tmpfiles --root="$root" --create "$installed/lib/tmpfiles.d/pat.conf" 2>&1); then
    fail "systemd-tmpfiles: $out"
  fi
  got=$(stat -c '%a %U %G' "$root/run/patd" 2>/dev/null || echo missing)
  [ "$got" = "755 root root" ] || fail "systemd-tmpfiles made /run/patd '$got', expected '755 root root'"
else
  # As another user, chown to root fails; a parse error would still show.
  echo "  note: not root, tmpfiles.d/pat.conf checked by parse only"
  out=$(systemd-tmpfiles --root="$root" --create "$installed/lib/tmpfiles.d/pat.conf" 2>&1 || true)
  if grep -v 'Operation not permitted' <<<"$out" | grep -q .; then fail "systemd-tmpfiles: $out"; fi
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "OK: units verified, negative control flagged, install layout and snippets checked"
