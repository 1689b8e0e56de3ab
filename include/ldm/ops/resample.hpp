#pragma once
// Nearest-neighbour upsampling and channel concatenation: the host path.
#include "ldm/ops/resample/host.hpp"
