#pragma once
// Linear (fully connected) layers: the host path, through ops::gemm.
#include "ldm/ops/linear/host.hpp"
