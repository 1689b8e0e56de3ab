#pragma once
/// @file
/// Learning-rate schedules under diffusers' get_scheduler names: the multiplier of the base
/// learning rate that diffusers' LambdaLR gives at each optimiser step. As in diffusers' training
/// scripts, which call lr_scheduler.step() after each optimizer.step(), the step that follows k
/// optimiser steps uses factor(k): the first step uses factor(0), which is 0 during a warm-up.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>

#include "ldm/core/error.hpp"

namespace ldm::train {

/// The schedules ldm implements, named as diffusers' SchedulerType.
enum class LRScheduleType {
  constant,              ///< 1 throughout
  constant_with_warmup,  ///< linear from 0 to 1 over warmup_steps, then 1
  linear,                ///< warm-up, then linear from 1 to 0 at total_steps
  cosine                 ///< warm-up, then a cosine over num_cycles periods (0.5: from 1 to 0)
};

/// A learning-rate schedule: the type and the numbers diffusers' get_scheduler takes.
struct LRSchedule {
  LRScheduleType type = LRScheduleType::constant;  ///< Which schedule.
  /// Steps of linear warm-up from 0 (every type but constant; >= 0).
  std::int64_t warmup_steps = 0;
  /// The step where linear and cosine reach their end (> 0 and >= warmup_steps for those two).
  std::int64_t total_steps = 0;
  /// cosine's periods after the warm-up (diffusers' default 0.5: a half cosine down to 0).
  double num_cycles = 0.5;

  /// The multiplier of the base learning rate at optimiser step `step` (0 for the first step).
  double factor(std::int64_t step) const {
    if (type == LRScheduleType::constant) return 1;
    if (step < warmup_steps) return double(step) / double(std::max<std::int64_t>(1, warmup_steps));
    const double span = double(std::max<std::int64_t>(1, total_steps - warmup_steps));
    switch (type) {
      case LRScheduleType::linear:
        return std::max(0.0, double(total_steps - step) / span);
      case LRScheduleType::cosine: {
        const double progress = double(step - warmup_steps) / span;
        return std::max(0.0,
                        0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles * 2.0 * progress)));
      }
      default:
        return 1;
    }
  }

  /// Checks the numbers against the type.
  /// @param field the schedule's name in messages (such as "unet_lr_schedule")
  /// @throws ldm::Error naming `field` and the number when warmup_steps is negative, or, for
  ///         linear and cosine, total_steps is not positive or is below warmup_steps, or, for
  ///         cosine, num_cycles is not a positive finite number
  void validate(std::string_view field) const {
    const std::string name(field);
    if (warmup_steps < 0) fail_expected(name + ".warmup_steps", ">= 0", warmup_steps);
    if (type != LRScheduleType::linear && type != LRScheduleType::cosine) return;
    if (total_steps <= 0) fail_expected(name + ".total_steps", "> 0", total_steps);
    if (warmup_steps > total_steps)
      fail_expected(name + ".warmup_steps", "<= total_steps (" + std::to_string(total_steps) + ")",
                    warmup_steps);
    if (type == LRScheduleType::cosine && !(std::isfinite(num_cycles) && num_cycles > 0))
      fail_expected(name + ".num_cycles", "a positive finite number", num_cycles);
  }
};

/// diffusers' name of a schedule type.
constexpr std::string_view to_string(LRScheduleType type) {
  switch (type) {
    case LRScheduleType::constant:
      return "constant";
    case LRScheduleType::constant_with_warmup:
      return "constant_with_warmup";
    case LRScheduleType::linear:
      return "linear";
    case LRScheduleType::cosine:
      return "cosine";
  }
  return "?";
}

/// The schedule type diffusers' get_scheduler calls `name`.
/// @param field where the name comes from, for messages (a flag or a metadata key)
/// @throws ldm::Error naming `field` when the name is one of diffusers' that ldm does not
///         implement (cosine_with_restarts, polynomial, piecewise_constant) or no schedule's
inline LRScheduleType lr_schedule_type(std::string_view name, std::string_view field) {
  for (auto type : {LRScheduleType::constant, LRScheduleType::constant_with_warmup,
                    LRScheduleType::linear, LRScheduleType::cosine})
    if (to_string(type) == name) return type;
  for (std::string_view missing : {"cosine_with_restarts", "polynomial", "piecewise_constant"})
    if (name == missing)
      fail(field, ": '", name, "' is a diffusers schedule that ldm does not implement; use ",
           "constant, constant_with_warmup, linear or cosine");
  constexpr std::size_t kShown = 64;  // the name may come from a file
  std::string shown(name.substr(0, kShown));
  if (name.size() > kShown) shown += "...";
  fail_expected(field, "one of constant, constant_with_warmup, linear, cosine", "'" + shown + "'");
}

}  // namespace ldm::train
