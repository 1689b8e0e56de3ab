#pragma once
// Buffers that depend on the batch size (saved activations, per-step tensors) are types of their
// own for each N; a pipeline keeps one of each type it has used, so a training step at a fixed
// batch allocates nothing after the first.

#include <memory>
#include <typeindex>
#include <unordered_map>

namespace ldm::pipeline {

class Workspaces {
 public:
  template <class W>
  W& get() {
    auto& slot = slots_[std::type_index(typeid(W))];
    if (!slot) slot = std::make_shared<W>();
    return *static_cast<W*>(slot.get());
  }

 private:
  std::unordered_map<std::type_index, std::shared_ptr<void>> slots_;
};

}  // namespace ldm::pipeline
