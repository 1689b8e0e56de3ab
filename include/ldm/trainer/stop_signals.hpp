#pragma once
/// @file
/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (what batch schedulers and closed terminals send before a
/// kill) ask a training run for a checkpoint and a clean stop; so does SIGUSR1, which OpenMPI's
/// mpirun forwards to every rank at once (on SIGTERM or SIGINT it gives them 1 s before a kill).
/// The handler only records the signal; the trainer checks it between steps.

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

/// From here on SIGINT, SIGTERM, SIGHUP and SIGUSR1 set stop_signal instead of ending the
/// program.
inline void catch_stop_signals() {
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGUSR1})
    std::signal(signal, detail::record_stop_signal);
}

/// "SIGINT (Ctrl-C)", "SIGTERM", "SIGHUP", "SIGUSR1", for messages.
inline const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT (Ctrl-C)";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "a signal";
  }
}

}  // namespace ldm::train
