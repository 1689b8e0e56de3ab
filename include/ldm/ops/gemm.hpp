#pragma once
// GEMM: the host BLAS path; the CUDA backend adds cuBLAS beside it.
#include "ldm/ops/gemm/host.hpp"
