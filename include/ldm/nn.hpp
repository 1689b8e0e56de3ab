#pragma once
// The modules the models are built from.
#include "ldm/nn/attention.hpp"
#include "ldm/nn/conv2d.hpp"
#include "ldm/nn/embedding.hpp"
#include "ldm/nn/group_norm.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/nn/resample.hpp"
#include "ldm/nn/resnet_block.hpp"
#include "ldm/nn/state_dict.hpp"
#include "ldm/nn/timestep_embedding.hpp"
