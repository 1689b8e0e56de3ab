#pragma once
// SiLU and dropout: the host path.
#include "ldm/ops/activation/host.hpp"
