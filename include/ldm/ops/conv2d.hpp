#pragma once
// Conv2d: the host im2col + BLAS path; the CUDA backend adds its kernels beside it.
#include "ldm/ops/conv2d/host.hpp"
