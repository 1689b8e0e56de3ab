#!/usr/bin/env bash
# The main job. Until the training pipeline lands, it builds the library's examples and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ldm_ensure_packages "${LDM_PACKAGES[@]}"
cmake --preset host >/dev/null
cmake --build --preset host -j "$(ldm_jobs)" --target forward_diffusion
./build/host/examples/forward_diffusion
