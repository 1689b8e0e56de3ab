#pragma once
// 2x2 max pooling and ReLU: the host path.
#include "ldm/ops/pool/host.hpp"
