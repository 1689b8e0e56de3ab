#pragma once
// Keeps a diverging run from writing NaNs into its weights. A training step whose loss or gradient
// norm is not finite is not applied (the caller skips the optimiser and the EMA); this counts such
// steps and ends training with an ldm::Error once too many come in a row, since by then the run
// is diverging rather than meeting one bad batch.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/nn/finite.hpp"

namespace ldm::train {

/// The training steps of one model that were not applied because a loss or the gradient norm
/// was not finite.
struct SkippedSteps {
  /// Since the last step that was applied.
  std::uint64_t in_a_row = 0;
  /// Since the pipeline was constructed.
  std::uint64_t total = 0;
  /// What was not finite in the latest skipped step (e.g. "L1 loss"); empty before the first.
  std::string cause;
};

/// One number a step produced, named as messages call it.
struct StepQuantity {
  std::string_view name;  ///< e.g. "KL loss", "gradient norm"
  double value;           ///< as the step computed it
};

/// Counts one model's steps that are not finite and ends training when `limit` come in a row.
class NonFiniteGuard {
 public:
  /// @param model the model as messages name it, e.g. "the autoencoder".
  /// @param limit how many non-finite steps in a row end training.
  /// @throws ldm::Error when `limit` is below 1.
  NonFiniteGuard(std::string model, int limit) : model_(std::move(model)), limit_(limit) {
    if (limit < 1)
      fail_expected("TrainingOptions::max_nonfinite_steps_in_a_row", "at least 1", limit);
  }

  /// Records one step's quantities, the most specific first (the terms of a loss before their
  /// total, the gradient norm last), and says whether the step may be applied: true when every
  /// one is finite.
  /// @param step the step being attempted (1-based, the count of applied steps plus one).
  /// @throws ldm::Error when this is the `limit`-th non-finite step in a row, naming the first
  ///         quantity that is not finite, its value and `step`.
  bool admit(std::initializer_list<StepQuantity> quantities, std::uint64_t step) {
    for (const StepQuantity& q : quantities) {
      if (std::isfinite(q.value)) continue;
      ++skipped_.in_a_row;
      ++skipped_.total;
      skipped_.cause = q.name;
      if (skipped_.in_a_row >= std::uint64_t(limit_))
        fail("training diverged: ", model_, "'s ", q.name, " is ", nn::nonfinite_text(q.value),
             " at step ", step, ", on ", skipped_.in_a_row,
             " batches in a row (the limit, TrainingOptions::max_nonfinite_steps_in_a_row); none "
             "of them was applied, so the weights and the optimiser are those after step ",
             step - 1, " (is the learning rate too high?)");
      return false;
    }
    skipped_.in_a_row = 0;
    return true;
  }

  /// The steps skipped so far.
  const SkippedSteps& skipped() const { return skipped_; }

 private:
  std::string model_;
  int limit_;
  SkippedSteps skipped_;
};

}  // namespace ldm::train
