#pragma once
// The training run and its command line (ldm/trainer/): what a training program includes, beside
// ldm/ldm.hpp (which leaves it out: most units that use the library do not train).

#include "ldm/ldm.hpp"
#include "ldm/trainer/main.hpp"
