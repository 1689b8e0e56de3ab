#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: installs missing packages, configures, builds,
# runs every test (GPU tests skip without a GPU), then the robustness tests again under
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ldm_ensure_packages "${LDM_PACKAGES[@]}" "${LDM_TEST_PACKAGES[@]}"
preset=$(ldm_preset)
# ctest runs two OpenMP programs at once on two cores: threads that spin at barriers would take
# the cores from each other's work, so they sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
jobs=$(ldm_jobs)

echo "ldm: configuring and building (preset '$preset', $jobs jobs)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
ctest --preset "$preset" -j "$jobs"

echo "ldm: sanitizer run (preset 'asan')"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"
