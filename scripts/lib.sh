# Shared by scripts/*.sh: installs what the build needs and picks the build preset.

# Debian packages the build, tests, examples and benchmarks need.
LDM_PACKAGES=(cmake ninja-build g++ pkg-config doctest-dev libbenchmark-dev libopenblas-openmp-dev
              nlohmann-json3-dev libstb-dev zlib1g-dev dataset-fashion-mnist)

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
