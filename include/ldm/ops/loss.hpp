#pragma once
// Training losses (MSE, L1, KL): the host path; the CUDA backend adds its kernels beside it.
#include "ldm/ops/loss/host.hpp"
