#pragma once
/// @file
/// Checks of command-line values, made before any work: each failure is an ldm::Error naming the
/// flag, what it allows and the value given, so that a typo costs nothing instead of a run.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "ldm/core/error.hpp"

namespace ldm::cli {

/// A number as messages show it (printf's %g: "0.001", "inf", "nan").
inline std::string shown(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

/// @throws ldm::Error naming `flag` when value is not a finite number in [low, high]
inline void require_in(const char* flag, double value, double low, double high) {
  if (!(std::isfinite(value) && value >= low && value <= high))
    fail_expected(flag, "a number in [" + shown(low) + ", " + shown(high) + "]", shown(value));
}

/// @throws ldm::Error naming `flag` when value is not a positive finite number
inline void require_positive(const char* flag, double value) {
  if (!(std::isfinite(value) && value > 0))
    fail_expected(flag, "a positive finite number", shown(value));
}

/// @throws ldm::Error naming `flag` when value is not a finite number >= 0
inline void require_non_negative(const char* flag, double value) {
  if (!(std::isfinite(value) && value >= 0))
    fail_expected(flag, "a finite number >= 0", shown(value));
}

/// @throws ldm::Error naming `flag` when value < low
inline void require_at_least(const char* flag, std::int64_t value, std::int64_t low) {
  if (value < low) fail_expected(flag, "at least " + std::to_string(low), value);
}

/// @throws ldm::Error naming `flag` when value is neither `first` nor `second`
inline void require_one_of(const char* flag, const std::string& value, const char* first,
                           const char* second) {
  if (value != first && value != second)
    fail_expected(flag, std::string(first) + " or " + second, "'" + value + "'");
}

}  // namespace ldm::cli
