#pragma once
/// @file
/// Shapes with every extent fixed at compile time, including the batch.
///
/// The batch rule: the batch is the first extent of an activation and is a template constant like
/// every other extent. Modules are templates over the per-sample shape and take the batch as a
/// template argument of forward/backward, so one model serves any batch size, each instantiation
/// knows its buffer sizes as constexpr, and a shape mismatch is always a compile error.
/// Images are NHWC: Shape<N, H, W, C>.

#include <array>
#include <cstddef>
#include <type_traits>

#include "ldm/core/macros.hpp"

namespace ldm {

/// A shape whose extents are compile-time constants, e.g. `Shape<N, H, W, C>` for NHWC images.
/// Every extent must be positive (a compile error otherwise).
template <index_t... Extents>
struct Shape {
  static_assert(((Extents > 0) && ...), "ldm::Shape: every extent must be positive");

  static constexpr int rank = sizeof...(Extents);                  ///< The number of axes.
  static constexpr std::array<index_t, rank> extents{Extents...};  ///< The extents.
  static constexpr index_t size = (index_t{1} * ... * Extents);    ///< The number of elements.

  /// Row-major strides in elements: the last extent is contiguous.
  static constexpr std::array<index_t, rank> strides = [] {
    std::array<index_t, rank> s{};
    index_t running = 1;
    for (int d = rank - 1; d >= 0; --d) {
      s[d] = running;
      running *= extents[d];
    }
    return s;
  }();

  /// The extent of `axis` (in [0, rank)).
  static constexpr index_t extent(int axis) { return extents[axis]; }
  /// The stride of `axis` (in [0, rank)), in elements.
  static constexpr index_t stride(int axis) { return strides[axis]; }

  /// Linear offset of a multi-index; one index per axis (a compile error otherwise), unchecked.
  template <class... I>
  LDM_HD static constexpr index_t offset(I... index) {
    static_assert(sizeof...(I) == rank, "ldm::Shape::offset: give one index per axis");
    const index_t idx[] = {static_cast<index_t>(index)...};
    index_t linear = 0;
    for (int d = 0; d < rank; ++d)
      linear = linear * extents_array()[d] + idx[d];
    return linear;
  }

  /// The extents as a plain array usable in device code (std::array's operator[] is not
  /// __device__ without --expt-relaxed-constexpr).
  LDM_HD static constexpr auto extents_array() {
    struct Array {
      index_t v[rank];
      LDM_HD constexpr index_t operator[](int i) const { return v[i]; }
    };
    return Array{{Extents...}};
  }
};

/// The shape of a scalar: no axes, one element.
template <>
struct Shape<> {
  static constexpr int rank = 0;                      ///< No axes.
  static constexpr std::array<index_t, 0> extents{};  ///< No extents.
  static constexpr std::array<index_t, 0> strides{};  ///< No strides.
  static constexpr index_t size = 1;                  ///< One element.
};

/// Whether S is an ldm::Shape.
template <class S>
struct is_shape : std::false_type {};
/// @cond
template <index_t... E>
struct is_shape<Shape<E...>> : std::true_type {};
/// @endcond
/// A type that is an ldm::Shape.
template <class S>
concept ShapeType = is_shape<S>::value;

namespace detail {
template <class A, class B>
struct concat_shapes;
template <index_t... A, index_t... B>
struct concat_shapes<Shape<A...>, Shape<B...>> {
  using type = Shape<A..., B...>;
};

// Builds Shape<...> from a constexpr array of extents.
template <auto Array, class Seq = std::make_index_sequence<Array.size()>>
struct shape_from_array;
template <auto Array, std::size_t... I>
struct shape_from_array<Array, std::index_sequence<I...>> {
  using type = Shape<Array[I]...>;
};

template <class S, int... Axes>
constexpr auto kept_extents() {
  constexpr int removed = sizeof...(Axes);
  std::array<index_t, S::rank - removed> kept{};
  int k = 0;
  for (int d = 0; d < S::rank; ++d) {
    bool drop = ((d == Axes) || ...);
    if (!drop) kept[k++] = S::extents[d];
  }
  return kept;
}

template <class S, int... Axes>
constexpr bool axes_valid() {
  constexpr int axes[] = {Axes..., -1};
  for (int i = 0; i < int(sizeof...(Axes)); ++i) {
    if (axes[i] < 0 || axes[i] >= S::rank) return false;
    for (int j = 0; j < i; ++j)
      if (axes[i] == axes[j]) return false;
  }
  return true;
}
}  // namespace detail

/// S with the listed axes removed: Shape<N,H,W,C> without <0,1,2> is Shape<C>. Each axis must be
/// in [0, rank) and listed once (a compile error otherwise).
template <class S, int... Axes>
requires(detail::axes_valid<S, Axes...>()) using remove_axes_t =
    typename detail::shape_from_array<detail::kept_extents<S, Axes...>()>::type;

/// The extents of A followed by those of B: Shape<2> and Shape<3, 4> make Shape<2, 3, 4>.
template <class A, class B>
using concat_shape_t = typename detail::concat_shapes<A, B>::type;

/// Shape<N, rest...> -> Shape<rest...>: one sample of a batch.
template <class S>
using sample_shape_t = remove_axes_t<S, 0>;

/// The batch extent by the rule in this file's description: the first extent.
template <class S>
inline constexpr index_t batch_of = S::extents[0];

}  // namespace ldm
