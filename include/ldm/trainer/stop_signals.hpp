#pragma once
/// @file
/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (what batch schedulers and closed terminals send before a
/// kill) ask a training run for a checkpoint and a clean stop. The handler only records the
/// signal; the trainer checks it between steps.

#include <csignal>

namespace ldm::train {

/// The stop signal caught, 0 before one comes.
inline volatile std::sig_atomic_t stop_signal = 0;

namespace detail {
extern "C" inline void record_stop_signal(int signal) {
  stop_signal = signal;
  // The same signal a second time ends the program at once (checkpoints stay whole).
  std::signal(signal, SIG_DFL);
}
}  // namespace detail

/// From here on SIGINT, SIGTERM and SIGHUP set stop_signal instead of ending the program.
inline void catch_stop_signals() {
  for (int signal : {SIGINT, SIGTERM, SIGHUP})
    std::signal(signal, detail::record_stop_signal);
}

/// "SIGINT (Ctrl-C)", "SIGTERM", "SIGHUP", for messages.
inline const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT (Ctrl-C)";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

}  // namespace ldm::train
