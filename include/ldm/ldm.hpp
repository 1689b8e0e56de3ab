#pragma once
// The whole library. A .cpp unit gets the host backend; a .cu unit gets the CUDA backend too.

#include "ldm/core/dtype.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/random.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/random.hpp"
#include "ldm/expr/reduce.hpp"
#include "ldm/ops/gemm.hpp"
