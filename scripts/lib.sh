# Shared by scripts/*.sh: installs what the build needs and picks the build preset.

# Debian packages the build, tests, examples and benchmarks need.
# libopenmpi-dev and openmpi-bin: the MPI communicator (include/ldm/distributed/) and mpirun for
# its tests.
LDM_PACKAGES=(cmake ninja-build g++ pkg-config doctest-dev libbenchmark-dev libopenblas-openmp-dev
              libstb-dev zlib1g-dev dataset-fashion-mnist libopenmpi-dev
              openmpi-bin)
# What the test suite needs beyond those: doxygen for the API reference and its api_docs test
# (kept apart because it brings LLVM's libraries, which scripts/main.sh has no use for).
LDM_TEST_PACKAGES=(doxygen)

ldm_missing_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]}"
}

# Installs missing packages with apt-get when running as root; otherwise says what to install.
ldm_ensure_packages() {
  local missing
  missing=$(ldm_missing_packages "$@")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "ldm: installing missing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "ldm: missing Debian packages: $missing" >&2
    echo "ldm: install them with: sudo apt-get install $missing" >&2
    exit 1
  fi
}

# The CUDA preset when nvcc is available (CUDA code is compiled even without a GPU), else host-only.
ldm_preset() {
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="$PATH:/usr/local/cuda/bin"
    echo cuda
  else
    echo host
  fi
}

ldm_jobs() { nproc 2>/dev/null || echo 2; }

# GPU machines without Debian's libstb-dev (the lent H200 runs Ubuntu and cannot install packages)
# use a copy made here: ldm_bundle_deps puts it under .deps/ (ignored by git; name it in the device
# run's carry), ldm_use_bundled_deps points the build at it.
ldm_bundle_deps() {
  rm -rf .deps && mkdir -p .deps/stb/lib/pkgconfig .deps/stb/include
  cp -r /usr/include/stb .deps/stb/include/
  cp -L /usr/lib/*/libstb.so* .deps/stb/lib/
  cat > .deps/stb/lib/pkgconfig/stb.pc <<PC
prefix=$(pwd)/.deps/stb
Name: stb
Description: stb single-file libraries (copied from Debian's libstb-dev)
Version: 0
Cflags: -I\${prefix}/include/stb
Libs: -L\${prefix}/lib -lstb
PC
  echo "ldm: stb bundled in .deps/ (carry .deps to the GPU machine)"
}

ldm_use_bundled_deps() {
  [ -d .deps ] || return 0
  local here
  here=$(pwd)
  # The stb bundle's prefix is where it was made; point it here.
  sed -i "s|^prefix=.*|prefix=$here/.deps/stb|" .deps/stb/lib/pkgconfig/stb.pc
  export PKG_CONFIG_PATH=$here/.deps/stb/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$here/.deps/stb/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
