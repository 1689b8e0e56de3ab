#pragma once
/// @file
/// Progress of a training phase: on a terminal, one bar redrawn in place (step, smoothed loss,
/// steps/s, time left); otherwise (CI, a log file) a plain line every `plain_interval` seconds, so
/// logs stay readable and short.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ldm::cli {

/// Seconds as "m:ss" or "h:mm:ss" ("--:--" when not a finite number >= 0).
inline std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = std::int64_t(seconds + 0.5);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", (long long)(s / 3600),
                  (long long)(s / 60 % 60), (long long)(s % 60));
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return text;
}

/// The progress display of one phase of work.
class Progress {
 public:
  using Clock = std::chrono::steady_clock;  ///< The clock of deadlines and rates.

  /// `deadline` bounds the time-left estimate when a time budget ends the phase first.
  Progress(std::string phase, std::int64_t first_step, std::int64_t last_step,
           Clock::time_point deadline = Clock::time_point::max(), double plain_interval = 15)
      : phase_(std::move(phase)),
        first_step_(first_step),
        last_step_(last_step),
        deadline_(deadline),
        plain_interval_(plain_interval),
        terminal_(::isatty(STDOUT_FILENO) != 0),
        start_(Clock::now()),
        last_print_(start_) {}

  /// After step `step` (1-based) finished with `loss`.
  void update(std::int64_t step, double loss) {
    smoothed_loss_ = has_loss_ ? 0.95 * smoothed_loss_ + 0.05 * loss : loss;
    has_loss_ = true;
    interval_loss_sum_ += loss;
    update(step);
  }
  /// After step `step` of work without a loss (sampling, evaluation).
  void update(std::int64_t step) {
    ++interval_steps_;
    step_ = step;
    const auto now = Clock::now();
    const double since_print = seconds(last_print_, now);
    if (terminal_ ? since_print >= 0.25
                  : (since_print >= plain_interval_ || step == first_step_ + 1))
      print(now);
  }

  /// Ends the phase's output with a summary line.
  void finish(const char* why) {
    const auto now = Clock::now();
    if (terminal_) print(now), std::printf("\n");
    std::printf("%s: %s after step %lld (%lld steps in %s, %.2f steps/s)", phase_.c_str(), why,
                (long long)step_, (long long)(step_ - first_step_),
                clock_text(seconds(start_, now)).c_str(), rate(now));
    if (has_loss_) std::printf(", loss %.5f", smoothed_loss_);
    std::printf("\n");
    std::fflush(stdout);
  }

  /// Tells a caller writing its own line (a checkpoint, an image) to start on a clean line.
  void interrupt_line() {
    if (terminal_) std::printf("\r\x1b[K");
  }

 private:
  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }
  double rate(Clock::time_point now) const {
    const double elapsed = seconds(start_, now);
    return elapsed > 0 ? double(step_ - first_step_) / elapsed : 0;
  }

  void print(Clock::time_point now) {
    const double steps_per_second = rate(now);
    double left = steps_per_second > 0 ? double(last_step_ - step_) / steps_per_second : NAN;
    if (deadline_ != Clock::time_point::max())
      left = std::min(std::isfinite(left) ? left : 1e300, std::max(0.0, seconds(now, deadline_)));
    const double done = last_step_ > 0 ? double(step_) / double(last_step_) : 1;
    if (terminal_) {
      constexpr int width = 24;
      const int filled = std::clamp(int(done * width + 0.5), 0, width);
      std::printf("\r\x1b[K%s [%s%s] %lld/%lld  ", phase_.c_str(),
                  std::string(std::size_t(filled), '#').c_str(),
                  std::string(std::size_t(width - filled), '.').c_str(), (long long)step_,
                  (long long)last_step_);
      if (has_loss_) std::printf("loss %.5f  ", smoothed_loss_);
      std::printf("%.2f steps/s  %s left", steps_per_second, clock_text(left).c_str());
    } else {
      std::printf("%s step %lld/%lld (%3.0f%%)  ", phase_.c_str(), (long long)step_,
                  (long long)last_step_, 100 * done);
      if (has_loss_)
        std::printf("loss %.5f (mean of the last %lld)  ",
                    interval_loss_sum_ / double(interval_steps_), (long long)interval_steps_);
      std::printf("%.2f steps/s  %s elapsed, %s left\n", steps_per_second,
                  clock_text(seconds(start_, now)).c_str(), clock_text(left).c_str());
    }
    std::fflush(stdout);
    interval_loss_sum_ = 0;
    interval_steps_ = 0;
    last_print_ = now;
  }

  std::string phase_;
  std::int64_t first_step_, last_step_, step_ = 0;
  Clock::time_point deadline_;
  double plain_interval_;
  bool terminal_;
  Clock::time_point start_, last_print_;
  bool has_loss_ = false;
  double smoothed_loss_ = 0, interval_loss_sum_ = 0;
  std::int64_t interval_steps_ = 0;
};

}  // namespace ldm::cli
