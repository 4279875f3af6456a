#!/usr/bin/env bash
# Installs everything pat needs to build, test and run, from Debian 12's archive.
# Idempotent and non-interactive: packages already present are left alone, so a
# second run costs one dpkg query.
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config
  # libraries (the brief: Debian packages only, nothing vendored)
  libseccomp-dev libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  doctest-dev libcli11-dev pybind11-dev
  # nettle's SHA-256: the host checks what pat-python's non-PIC build was
  # linked from against the installed libpython (docs/pat-python.md)
  nettle-dev
  # Debian's Python: pat-python links libpython3.11.so; numpy and matplotlib are
  # used by tests, the demo and the benchmark plots.
  python3.11 libpython3.11-dev python3.11-dev python3-numpy python3-matplotlib
  # CPython's own regression suite: test_concurrent_futures is run against
  # pat.Executor (tests/python_pat/cpython_conformance.py), the whole suite in
  # members by scripts/python_testsuite_compare.py and a subset by CTest
  libpython3.11-testsuite
  # the libraries that fan out work, which pat plugs into (pat.joblib,
  # pat.dask; tests/python_pat/members/{joblib_backend,dask_scheduler}.py,
  # bench/dask_schedulers.py); scikit-learn runs its n_jobs on pat's joblib
  # backend in the tests
  python3-joblib python3-dask python3-sklearn
  # pat-python's non-PIC build links Debian's static libpython3.11.a,
  # which needs these two (libpython3.11-dev depends on them too)
  libexpat1-dev zlib1g-dev
  # the fuzz targets (tests/fuzz, bench/fuzz.sh): Debian's clang 14 with
  # libFuzzer and the sanitizer runtimes
  clang-14 libclang-rt-14-dev libfuzzer-14-dev
  # the man pages (man/): scdoc converts them, man-db's man checks them
  scdoc man-db
  # the Debian package (debian/) and its test (scripts/test-package.sh)
  dpkg-dev debhelper dh-python lintian debootstrap
  # used by the tests: setpriv (util-linux), capsh/getpcaps (libcap2-bin),
  # systemd-analyze (systemd), ps and pgrep (procps), useradd (passwd)
  util-linux libcap2-bin systemd procps passwd
  # debugging members (docs/debugging.md, tests/integration/debugging_test.cc):
  # gdb, and python3.11-dbg for CPython's gdb extension (py-bt) and the debug
  # files of python3.11 and libpython3.11.so
  gdb python3.11-dbg
  # tests/metrics: a real Prometheus server scrapes patd --metrics-listen
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
