#pragma once
// Compile-time loops over a model's levels and blocks, whose types differ from one to the next.

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace ldm::models {

template <std::size_t I>
using index_constant = std::integral_constant<std::size_t, I>;

template <std::size_t Count, class F>
constexpr void static_for(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(index_constant<I>{}), ...);
  }
  (std::make_index_sequence<Count>{});
}

template <std::size_t Count, class F>
constexpr void static_for_reverse(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(index_constant<Count - 1 - I>{}), ...);
  }
  (std::make_index_sequence<Count>{});
}

// std::array<T, Count>{make(0), make(1), ...} for element types without a default constructor.
template <std::size_t Count, class F>
auto make_array(F&& make) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    using Element = decltype(make(index_constant<0>{}));
    return std::array<Element, Count>{make(index_constant<I>{})...};
  }
  (std::make_index_sequence<Count>{});
}

// std::tuple{make(0), make(1), ...}: one element per level, each of its own type.
template <std::size_t Count, class F>
auto make_tuple(F&& make) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<decltype(make(index_constant<I>{}))...>{make(index_constant<I>{})...};
  }
  (std::make_index_sequence<Count>{});
}

}  // namespace ldm::models
