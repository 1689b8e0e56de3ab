#pragma once
/// @file
/// ldm::level_list: a short list written `{32, 64}` in a configuration, usable inside a
/// non-type template argument (a structural type of fixed capacity).

#include <cstddef>
#include <initializer_list>

#include "ldm/core/macros.hpp"

namespace ldm {

/// The most entries a level_list holds: more resolution levels than any diffusers model has.
inline constexpr int max_levels = 8;

namespace detail {
// Not constexpr on purpose: a configuration that calls it is not a constant expression, and the
// compiler's message names this function.
inline void level_list_holds_at_most_ldm_max_levels_entries() {
}
}  // namespace detail

/// A list of at most ldm::max_levels values, one per resolution level, finest first: a
/// configuration's block_out_channels, attention flags or per-level settings. Structural (every
/// member public), so a configuration holding it is a template argument; the entries past
/// size() are zero, so equal lists are the same template argument.
template <class T>
struct level_list {
  T items[max_levels]{};  ///< The entries; those from count on are zero.
  int count = 0;          ///< How many entries the list holds.

  /// An empty list.
  constexpr level_list() = default;
  /// The list of `values`: at most ldm::max_levels of them (more is a compile error naming
  /// detail::level_list_holds_at_most_ldm_max_levels_entries).
  constexpr level_list(std::initializer_list<T> values) {  // NOLINT: implicit, as `= {32, 64}`
    if (values.size() > std::size_t(max_levels))
      detail::level_list_holds_at_most_ldm_max_levels_entries();
    for (const T& v : values)
      if (count < max_levels) items[count++] = v;
  }
  /// The number of entries.
  constexpr int size() const { return count; }
  /// The entry at `i`, in [0, size()).
  constexpr T operator[](int i) const { return items[i]; }
  /// The first entry, for range-for.
  constexpr const T* begin() const { return items; }
  /// One past the last entry, for range-for.
  constexpr const T* end() const { return items + count; }
};

}  // namespace ldm
