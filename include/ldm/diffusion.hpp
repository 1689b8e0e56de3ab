#pragma once
// Diffusion: beta schedules, the forward process and its parameterisations, and the samplers.
// Each sampler is a header of its own over schedule.hpp and forward_process.hpp, so another one
// (Euler, DPM-Solver++) is added beside them without touching them.
//
// Everything lives in ldm::diffusion. The compile-time schedules a user's configuration names are
// also lifted into ldm, where the configuration examples spell them (ldm::LinearBetas<1000>).

#include "ldm/diffusion/ddim.hpp"
#include "ldm/diffusion/ddpm.hpp"
#include "ldm/diffusion/dpm_solver_multistep.hpp"
#include "ldm/diffusion/euler_ancestral_discrete.hpp"
#include "ldm/diffusion/euler_discrete.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/heun_discrete.hpp"
#include "ldm/diffusion/multistep_grid.hpp"
#include "ldm/diffusion/multistep_solver.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigma_sampler.hpp"
#include "ldm/diffusion/sigma_steps.hpp"
#include "ldm/diffusion/sigmas.hpp"
#include "ldm/diffusion/timestep_sampler.hpp"
#include "ldm/diffusion/unipc_multistep.hpp"

namespace ldm {
using diffusion::LinearBetas;
using diffusion::ScaledLinearBetas;
using diffusion::SquaredCosCapV2Betas;
}  // namespace ldm
