#pragma once
// Multi-head scaled dot-product attention: the host path; the CUDA backend adds its kernels beside
// it.
#include "ldm/ops/attention/host.hpp"
