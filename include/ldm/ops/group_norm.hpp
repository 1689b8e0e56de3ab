#pragma once
// GroupNorm, and GroupNorm fused with SiLU: the host path.
#include "ldm/ops/group_norm/host.hpp"
