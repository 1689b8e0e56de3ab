#pragma once
// Which GPU work goes to, and the one stream every ldm kernel, copy and library call is ordered
// on. One stream keeps the caching allocator simple (a freed block may be reused at once: every
// later use is queued behind every earlier one) and makes a training step capturable as a graph.

#include <cuda_runtime.h>

#include "ldm/core/cuda/check.cuh"

namespace ldm::cuda_device {

// GPUs the process can use; 0 where there is no driver or no device, rather than an error, so
// programs and tests can fall back or skip.
inline int count() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return devices;
}

inline bool available() {
  return count() > 0;
}

// The stream ldm works on: created on first use on the current device, never destroyed (work may
// still be queued when static destructors run).
inline cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    LDM_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

inline void synchronize() {
  LDM_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

inline int multiprocessor_count() {
  static int sms = [] {
    int device = 0, value = 0;
    LDM_CUDA_CHECK(cudaGetDevice(&device));
    LDM_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device));
    return value;
  }();
  return sms;
}

// Records a point on ldm's stream; elapsed() measures GPU time between two of them.
class Event {
 public:
  Event() { LDM_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record() { LDM_CUDA_CHECK(cudaEventRecord(event_, stream())); }
  void wait() { LDM_CUDA_CHECK(cudaEventSynchronize(event_)); }
  // Milliseconds from `start` to this event; both must have been recorded.
  float elapsed_since(const Event& start) {
    wait();
    float ms = 0;
    LDM_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace ldm::cuda_device
