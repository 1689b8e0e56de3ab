#pragma once
// Sinusoidal timestep embedding: the host path; the CUDA backend adds its kernel beside it.
#include "ldm/ops/embedding/host.hpp"
