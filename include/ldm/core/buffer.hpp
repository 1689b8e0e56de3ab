#pragma once
// Buffer<T, Space>: an owning, zero-initialised array whose length is known only at run time
// (optimiser state, scratch for library calls). Tensors are for everything with a static shape.

#include <cstddef>
#include <memory>
#include <type_traits>

#include "ldm/core/space.hpp"

namespace ldm {

template <class T, class Space = host>
class Buffer {
  static_assert(std::is_trivially_copyable_v<T>, "ldm::Buffer: T must be trivially copyable");

 public:
  Buffer() = default;
  explicit Buffer(std::size_t count)
      : count_(count), storage_(static_cast<T*>(memory<Space>::allocate(count * sizeof(T)))) {
    memory<Space>::zero(storage_.get(), count * sizeof(T));
  }

  T* data() { return storage_.get(); }
  const T* data() const { return storage_.get(); }
  std::size_t size() const { return count_; }

 private:
  struct Release {
    void operator()(T* p) const noexcept { memory<Space>::release(p); }
  };
  std::size_t count_ = 0;
  std::unique_ptr<T, Release> storage_;
};

}  // namespace ldm
