#pragma once
// What a block or model derives from its list of submodules instead of writing it out per
// module: the parameters they hold together, the binding of an optional one, and, for a chain of
// levels (a tuple of module types, one per level, each running on the previous one's output),
// their Saved<N>s, their outputs and the input of each.

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>

#include "ldm/core/tensor.hpp"
#include "ldm/models/static_for.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::models {

namespace module_list_detail {

template <class M>
struct ParameterCount {
  static constexpr index_t value = M::parameter_count;
};
template <class M, std::size_t K>
struct ParameterCount<std::array<M, K>> {
  static constexpr index_t value = index_t(K) * ParameterCount<M>::value;
};
template <class... M>
struct ParameterCount<std::tuple<M...>> {
  static constexpr index_t value = (index_t(0) + ... + ParameterCount<M>::value);
};

template <template <std::size_t> class Module, class Indices>
struct IndexedTuple;
template <template <std::size_t> class Module, std::size_t... I>
struct IndexedTuple<Module, std::index_sequence<I...>> {
  using type = std::tuple<Module<I>...>;
};

// One type per module of a tuple (its Saved<N>, a tensor for its input<N> or output<N>), each
// named only when asked for: not every module declares all three.
template <class Modules, index_t N>
struct EachSaved;
template <class... M, index_t N>
struct EachSaved<std::tuple<M...>, N> {
  using type = std::tuple<typename M::template Saved<N>...>;
};
template <class T, class Space, class Modules, index_t N>
struct EachInput;
template <class T, class Space, class... M, index_t N>
struct EachInput<T, Space, std::tuple<M...>, N> {
  using type = std::tuple<Tensor<T, typename M::template input<N>, Space>...>;
};
template <class T, class Space, class Modules, index_t N>
struct EachOutput;
template <class T, class Space, class... M, index_t N>
struct EachOutput<T, Space, std::tuple<M...>, N> {
  using type = std::tuple<Tensor<T, typename M::template output<N>, Space>...>;
};

}  // namespace module_list_detail

// The parameters of a module's submodules together, given their types in member order: a
// tuple counts each of its elements, an array<M, K> K times M's.
template <class... Submodules>
inline constexpr index_t parameters_of = (index_t(0) + ... +
                                          module_list_detail::ParameterCount<Submodules>::value);

// An optional submodule M: bound under `b` when the configuration has it, else M's placeholder
// (nn::Absent, nn::Identity), which binds nothing.
template <class M, bool Present, class T, class Space>
M bind_if(nn::ParameterBinder<T, Space> b) {
  if constexpr (Present)
    return M(b);
  else
    return M{};
}

// std::tuple<Module<0>, ..., Module<Count - 1>>: a model's levels, each a type of its own.
template <template <std::size_t> class Module, std::size_t Count>
using indexed_tuple =
    typename module_list_detail::IndexedTuple<Module, std::make_index_sequence<Count>>::type;

// The Saved<N> of each of a tuple of modules.
template <class Modules, index_t N>
using saved_of_each = typename module_list_detail::EachSaved<Modules, N>::type;

// A tensor of T in Space for the input<N> of each of a tuple of modules.
template <class T, class Space, class Modules, index_t N>
using inputs_of_each = typename module_list_detail::EachInput<T, Space, Modules, N>::type;

// A tensor of T in Space for the output<N> of each of a tuple of modules.
template <class T, class Space, class Modules, index_t N>
using outputs_of_each = typename module_list_detail::EachOutput<T, Space, Modules, N>::type;

// What level L of a chain reads: `first` for level 0, else level L - 1's entry of `outputs`.
// The same serves backward, where `first` and `outputs` are the gradients they receive.
template <std::size_t L, class First, class Outputs>
constexpr auto& chain_input(First& first, Outputs& outputs) {
  if constexpr (L == 0)
    return first;
  else
    return std::get<L - 1>(outputs);
}

// Runs a chain of levels under the module contract: level l reads chain_input<l>(first,
// outputs), keeps saved[l] and writes outputs[l].
template <class Levels, class First, class SavedTuple, class Outputs>
void chain_forward(const Levels& levels, const First& first, SavedTuple& saved, Outputs& outputs,
                   const nn::Mode& mode) {
  static_for<std::tuple_size_v<Levels>>([&](auto l) {
    std::get<l>(levels).forward(chain_input<l>(first, outputs), std::get<l>(saved),
                                std::get<l>(outputs).view(), mode);
  });
}

// Its backward, from the gradients of the outputs in `grads` (level l's is overwritten by level
// l + 1's backward) to dfirst, the gradient of `first`.
template <class Levels, class First, class SavedTuple, class Outputs, class Grads, class DFirst>
void chain_backward(const Levels& levels, const First& first, const SavedTuple& saved,
                    const Outputs& outputs, Grads& grads, DFirst& dfirst) {
  static_for_reverse<std::tuple_size_v<Levels>>([&](auto l) {
    std::get<l>(levels).backward(chain_input<l>(first, outputs), std::get<l>(saved),
                                 std::get<l>(grads), chain_input<l>(dfirst, grads).view());
  });
}

}  // namespace ldm::models
