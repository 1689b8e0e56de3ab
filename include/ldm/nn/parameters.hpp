#pragma once
// Parameters of a model live in one flat buffer, their gradients in another of the same size, so
// the optimiser, clipping, EMA and checkpoints are each one pass over one buffer.
//
// Modules do not own parameters: at construction each takes its slices from a ParameterBinder in
// a fixed order and records, for each parameter, its diffusers name, its PyTorch shape and layout
// (for files) and how PyTorch initialises it. Parameter counts are constexpr in every module type,
// so a model's buffers are sized at compile time.

#include <cassert>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/random.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::nn {

// How a parameter's internal layout differs from PyTorch's.
enum class Layout {
  same,       // identical element order
  conv_ohwi,  // internal [Cout, KH, KW, Cin]; PyTorch [Cout, Cin, KH, KW]
};

// PyTorch's default initialisations. kaiming_uniform_(a = sqrt(5)) on a weight and the bias rule
// both come to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); GroupNorm starts at weight 1, bias 0;
// nn.Embedding draws N(0, 1).
enum class Init { uniform_fan_in, ones, zeros, normal };

struct ParameterInfo {
  std::string name;    // diffusers state-dict key, e.g. "down_blocks.0.resnets.1.conv1.weight"
  index_t offset = 0;  // into the flat buffer
  index_t size = 0;    // elements
  std::vector<std::int64_t> torch_shape;
  Layout layout = Layout::same;
  Init init = Init::zeros;
  index_t fan_in = 1;
};

// A parameter's value and gradient, as views into the two flat buffers.
template <class T, ShapeType S, class Space>
struct Param {
  View<T, S, Space> value;
  View<T, S, Space> grad;
};

// Where a model's parameters go: the two flat buffers, a cursor and the descriptions so far.
template <class T>
struct ParameterStore {
  T* values;
  T* grads;
  index_t capacity;
  index_t cursor = 0;
  std::vector<ParameterInfo> infos;
};

// Hands out consecutive slices of a ParameterStore under a name prefix. Copies share the store, so
// a module passes `binder.scope("conv1")` to a submodule by value.
template <class T, class Space>
class ParameterBinder {
 public:
  explicit ParameterBinder(ParameterStore<T>& store) : store_(&store) {}

  ParameterBinder scope(const std::string& name) const {
    ParameterBinder child = *this;
    child.prefix_ = prefix_ + name + ".";
    return child;
  }

  // Where the next parameter will go: unique per parameter in a model, so also a layer identity.
  index_t cursor() const { return store_->cursor; }

  template <ShapeType S>
  Param<T, S, Space> take(const std::string& name, std::vector<std::int64_t> torch_shape,
                          Layout layout, Init init, index_t fan_in) const {
    ParameterStore<T>& st = *store_;
    // A module type whose parameter_count is smaller than what it binds would otherwise write
    // past the flat buffers.
    if (st.cursor + S::size > st.capacity)
      fail("ldm::nn: ", prefix_, name, " does not fit: the model's parameter_count is ",
           st.capacity, ", smaller than the parameters its modules bind");
    std::int64_t torch_size = 1;
    for (auto e : torch_shape)
      torch_size *= e;
    assert(torch_size == S::size && "PyTorch shape and internal shape differ in size");
    (void)torch_size;
    st.infos.push_back(ParameterInfo{prefix_ + name, st.cursor, S::size, std::move(torch_shape),
                                     layout, init, fan_in});
    Param<T, S, Space> p{View<T, S, Space>(st.values + st.cursor),
                         View<T, S, Space>(st.grads + st.cursor)};
    st.cursor += S::size;
    return p;
  }

 private:
  ParameterStore<T>* store_;
  std::string prefix_;
};

// Fills the values of every described parameter with PyTorch's default initialisation, drawing
// parameter k's elements from the uniform Philox stream (seed, k).
template <class T>
void initialise(const std::vector<ParameterInfo>& infos, T* values, std::uint64_t seed) {
  for (std::size_t k = 0; k < infos.size(); ++k) {
    const ParameterInfo& p = infos[k];
    T* v = values + p.offset;
    switch (p.init) {
      case Init::ones:
        for (index_t i = 0; i < p.size; ++i)
          v[i] = T(1);
        break;
      case Init::zeros:
        for (index_t i = 0; i < p.size; ++i)
          v[i] = T(0);
        break;
      case Init::normal:
        for (index_t i = 0; i < p.size; ++i)
          v[i] = T(normal(seed, k, std::uint64_t(i)));
        break;
      case Init::uniform_fan_in: {
        const double bound = 1.0 / std::sqrt(double(p.fan_in));
        for (index_t i = 0; i < p.size; ++i)
          v[i] = T((2.0 * uniform(seed, k, std::uint64_t(i)) - 1.0) * bound);
        break;
      }
    }
  }
}

// A module's parameters and gradients, owned: what a stand-alone module (or a test) needs.
// Models own one of these for all their modules.
template <class Module, class Space = host>
class Owned {
 public:
  using T = typename Module::value_type;
  static constexpr index_t count = Module::parameter_count;

  template <class... Args>
  explicit Owned(std::uint64_t seed, Args&&... args)
      : store_{values_.data(), grads_.data(), count, 0, {}},
        module_(ParameterBinder<T, Space>(store_), std::forward<Args>(args)...) {
    if (store_.cursor != count)
      fail("ldm::nn::Owned: the module's parameter_count is ", count, " but it binds ",
           store_.cursor, " parameters");
    if constexpr (std::is_same_v<Space, host>) {
      initialise(store_.infos, values_.data(), seed);
    } else {
      // The same numbers on every backend: drawn on the host, then copied.
      Tensor<T, Shape<count>> staged;
      initialise(store_.infos, staged.data(), seed);
      copy_elements<host, Space>(staged.data(), values_.data(), std::size_t(count));
    }
  }

  Owned(const Owned&) = delete;  // the module holds views of these buffers
  Owned& operator=(const Owned&) = delete;

  Module& operator*() { return module_; }
  const Module& operator*() const { return module_; }
  Module* operator->() { return &module_; }
  const Module* operator->() const { return &module_; }
  View<T, Shape<count>, Space> values() { return values_.view(); }
  View<const T, Shape<count>, Space> values() const { return values_.view(); }
  View<T, Shape<count>, Space> grads() { return grads_.view(); }
  View<const T, Shape<count>, Space> grads() const { return grads_.view(); }
  const std::vector<ParameterInfo>& infos() const { return store_.infos; }

 private:
  Tensor<T, Shape<count>, Space> values_, grads_;
  ParameterStore<T> store_;
  Module module_;
};

}  // namespace ldm::nn
