#pragma once
// The contract every module meets, and what is derived from it.
//
// A module is a class template over its per-sample shapes with
//   value_type, a constexpr parameter_count,
//   template <index_t N> using input = Shape<N, ...>;  template <index_t N> using output = ...;
//   template <index_t N> struct Saved (or `using Saved = NoSaved` when it keeps nothing),
//   forward(x, Saved<N>& saved, y, const Mode& mode = inference)   overwrites y,
//   backward(x, const Saved<N>& saved, dy, dx)                     overwrites dx and adds the
//                                                                  parameter gradients.
// Modules with more inputs (a time embedding, skip connections) take them after x, and their
// gradients after dx. An input that gets no gradient (timesteps, class labels) has no dx, and
// backward takes it only if it reads it. So a block composes any submodules the same way: forward
// calls each one with its own Saved member, and backward calls them in reverse with the same
// members.
//
// A Saved is a plain aggregate of tensors, arrays and tuples of tensors, nested Saved structs and
// scalars (dropout seeds, flags). saved_bytes<Saved>() adds up the tensor bytes of every field,
// so what a module keeps for backward is counted from its declaration, never by a formula kept
// beside it.
//
// What a module allocates while it runs is its Scratch: the most bytes of temporaries (tensors
// declared in forward or backward, and the ops' own scratch) live at once beyond its arguments
// and its Saved. A module that allocates anything declares, next to forward and backward,
//   template <index_t N> static constexpr Scratch scratch(const ops::HostScratch& host);
// written from the temporaries its forward and backward declare, in their order, and its
// submodules' scratch_of<Sub, N>(host); leaf modules that allocate nothing declare nothing.
// The memory plans (models/memory_plan.hpp) are these, added up.

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ldm/core/tensor.hpp"
#include "ldm/ops/host_scratch.hpp"

namespace ldm::nn {

// The saved state of a module that keeps nothing between forward and backward.
struct NoSaved {};

// The place of an optional submodule that a configuration leaves out (a ResNet block's shortcut
// when the channels do not change, a level's attention): no parameters, never called.
struct Absent {
  static constexpr index_t parameter_count = 0;
};

namespace detail {

// Converts to any field type: aggregate initialisation from N of these compiles exactly when the
// aggregate has at least N fields. Declared only: it is used in unevaluated contexts.
struct AnyField {
  template <class U>
  operator U() const;
};

template <class S, class... Probes>
constexpr std::size_t field_count() {
  if constexpr (requires { S{Probes{}..., AnyField{}}; })
    return field_count<S, Probes..., AnyField>();
  else
    return sizeof...(Probes);
}

template <class... Fields>
struct FieldTypes {};

// The declared types of an aggregate's fields, through a structured binding (only ever named in
// decltype, never called).
template <class S>
auto field_types(S& s) {
  constexpr std::size_t n = field_count<S>();
  static_assert(n <= 16, "ldm::nn::saved_bytes: a Saved struct has at most 16 fields");
  if constexpr (n == 0) {
    return FieldTypes<>{};
  } else if constexpr (n == 1) {
    auto& [a] = s;
    return FieldTypes<decltype(a)>{};
  } else if constexpr (n == 2) {
    auto& [a, b] = s;
    return FieldTypes<decltype(a), decltype(b)>{};
  } else if constexpr (n == 3) {
    auto& [a, b, c] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c)>{};
  } else if constexpr (n == 4) {
    auto& [a, b, c, d] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d)>{};
  } else if constexpr (n == 5) {
    auto& [a, b, c, d, e] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e)>{};
  } else if constexpr (n == 6) {
    auto& [a, b, c, d, e, f] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e),
                      decltype(f)>{};
  } else if constexpr (n == 7) {
    auto& [a, b, c, d, e, f, g] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g)>{};
  } else if constexpr (n == 8) {
    auto& [a, b, c, d, e, f, g, h] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h)>{};
  } else if constexpr (n == 9) {
    auto& [a, b, c, d, e, f, g, h, i] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i)>{};
  } else if constexpr (n == 10) {
    auto& [a, b, c, d, e, f, g, h, i, j] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j)>{};
  } else if constexpr (n == 11) {
    auto& [a, b, c, d, e, f, g, h, i, j, k] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k)>{};
  } else if constexpr (n == 12) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k),
                      decltype(l)>{};
  } else if constexpr (n == 13) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k), decltype(l),
                      decltype(m)>{};
  } else if constexpr (n == 14) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k), decltype(l),
                      decltype(m), decltype(n)>{};
  } else if constexpr (n == 15) {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k), decltype(l),
                      decltype(m), decltype(n), decltype(o)>{};
  } else {
    auto& [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = s;
    return FieldTypes<decltype(a), decltype(b), decltype(c), decltype(d), decltype(e), decltype(f),
                      decltype(g), decltype(h), decltype(i), decltype(j), decltype(k), decltype(l),
                      decltype(m), decltype(n), decltype(o), decltype(p)>{};
  }
}

template <class S>
constexpr std::size_t aggregate_bytes();

// Tensors count their bytes, arrays and tuples their elements', nested aggregates (Saved structs)
// their fields'; scalars (seeds, flags) and placeholders hold no tensor memory.
template <class F>
struct FieldBytes {
  static constexpr std::size_t value = [] {
    if constexpr (std::is_aggregate_v<F> && std::is_class_v<F>)
      return aggregate_bytes<F>();
    else
      return std::size_t(0);
  }();
};
template <class T, ShapeType S, class Space>
struct FieldBytes<Tensor<T, S, Space>> {
  static constexpr std::size_t value = sizeof(T) * std::size_t(S::size);
};
template <class F, std::size_t K>
struct FieldBytes<std::array<F, K>> {
  static constexpr std::size_t value = K * FieldBytes<F>::value;
};
template <class... F>
struct FieldBytes<std::tuple<F...>> {
  static constexpr std::size_t value = (std::size_t(0) + ... + FieldBytes<F>::value);
};

template <class... F>
constexpr std::size_t sum_field_bytes(FieldTypes<F...>) {
  return (std::size_t(0) + ... + FieldBytes<std::remove_cvref_t<F>>::value);
}

template <class S>
constexpr std::size_t aggregate_bytes() {
  return sum_field_bytes(decltype(field_types(std::declval<S&>())){});
}

}  // namespace detail

// The bytes of tensor memory a Saved struct (or any aggregate of tensors) holds.
template <class Saved>
inline constexpr std::size_t saved_bytes = detail::FieldBytes<Saved>::value;

// The bytes of some tensors (or aggregates of them) together: the temporaries of a scope.
template <class... Tensors>
inline constexpr std::size_t bytes_of = (std::size_t(0) + ... + saved_bytes<Tensors>);

// The peak of temporaries a module's forward and backward hold, in bytes (see above).
struct Scratch {
  std::size_t forward = 0, backward = 0;
};

// Module M's scratch at batch N (for a Linear, N is its number of rows); none if it declares none.
template <class M, index_t N>
constexpr Scratch scratch_of(const ops::HostScratch& host) {
  if constexpr (requires { M::template scratch<N>(host); })
    return M::template scratch<N>(host);
  else
    return {};
}

// The larger of some byte counts: consecutive scopes of a pass, of which one is live at a time.
template <class... Bytes>
constexpr std::size_t peak(std::size_t first, Bytes... rest) {
  ((first = first < std::size_t(rest) ? std::size_t(rest) : first), ...);
  return first;
}

// The peak of each pass over a tuple of modules that run one after another (a model's levels).
template <class Modules, index_t N>
constexpr Scratch scratch_of_each(const ops::HostScratch& host) {
  return [&]<std::size_t... L>(std::index_sequence<L...>) {
    return Scratch{
        peak(std::size_t(0), scratch_of<std::tuple_element_t<L, Modules>, N>(host).forward...),
        peak(std::size_t(0), scratch_of<std::tuple_element_t<L, Modules>, N>(host).backward...)};
  }
  (std::make_index_sequence<std::tuple_size_v<Modules>>{});
}

}  // namespace ldm::nn
