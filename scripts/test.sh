#!/usr/bin/env bash
# README command 2: set up, build and run every test.
#  1. the Release build: unit and integration tests (real patd, real members);
#  2. an ASan+UBSan build: the unit tests again under the sanitizers.
# Needs root: the integration tests start hosts as other users (setpriv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./scripts/setup.sh

echo "== Release build"
BUILD_DIR="$root/build" ./scripts/build.sh
echo "== Release: all tests but those labelled long (ctest -L long runs them)"
ctest --test-dir "$root/build" --output-on-failure --timeout 600 -j "$(nproc)" -LE long

echo "== ASan+UBSan build"
BUILD_DIR="$root/build-asan" BUILD_TYPE=RelWithDebInfo ./scripts/build.sh -DPAT_SANITIZE=ON
echo "== ASan+UBSan: unit tests"
ctest --test-dir "$root/build-asan" --output-on-failure --timeout 600 -L unit -j "$(nproc)"
