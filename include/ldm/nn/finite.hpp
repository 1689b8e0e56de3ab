#pragma once
// Whether float buffers hold only finite numbers, in any memory space. The pipeline asks before it
// writes weights and after it samples, so that a NaN or an infinity becomes an error that says
// where it is, not a checkpoint that cannot be used or an all-black image.

#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

namespace detail {

// 0 for a finite element and NaN for an infinity or a NaN, so the sum is 0 exactly when every
// element is finite. x - x stays NaN for those: the build does not allow -ffast-math's folding.
template <class T>
struct NonFiniteMark {
  const T* x;
  LDM_HD double operator()(index_t i) const {
    const double v = x[i];
    return v - v;
  }
};
struct AddMarks {
  LDM_HD double operator()(double a, double b) const { return a + b; }
};

}  // namespace detail

/// How messages write a value that is not finite: "NaN" (whatever its sign), "inf" or "-inf".
inline const char* nonfinite_text(double value) {
  return std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf";
}

/// Whether all `count` numbers at `data` (float or double, in Space's memory) are finite: one
/// reduction in place, a few percent of a single forward pass over the same buffer.
template <class Space = host, class T>
bool all_finite(const T* data, std::size_t count) {
  return expr::executor<Space>::reduce(index_t(count), 0.0, detail::NonFiniteMark<T>{data},
                                       detail::AddMarks{}) == 0;
}

/// The index of the first of `count` numbers at `data` (in Space's memory) that is not finite, or
/// nothing when all are. Reads a copy in host memory when Space is not the host: meant for the
/// message after all_finite() said no.
template <class Space = host, class T>
std::optional<std::size_t> first_nonfinite(const T* data, std::size_t count) {
  auto scan = [&](const T* values) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(values[i])) return i;
    return std::nullopt;
  };
  if constexpr (std::is_same_v<Space, host>) {
    return scan(data);
  } else {
    return scan(host_vector<Space>(data, count).data());
  }
}

/// Refuses host values of which one is not finite.
/// @param what the values, as messages name them (e.g. "set_null_context:")
/// @throws ldm::Error "<what> value <i>: expected a finite number, found ..." for the first.
inline void require_finite_values(std::span<const float> values, const std::string& what) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      fail_expected(what + " value " + std::to_string(i), "a finite number", values[i]);
}

/// Refuses a model's flat parameter buffer (`values`, in Space's memory, laid out as `infos`
/// describe) that holds a NaN or an infinity.
/// @param what the model, as messages name it (e.g. "the UNet's EMA weights").
/// @throws ldm::Error naming `what`, the parameter holding the first non-finite value, its
///         element (in ldm's internal layout) and the value.
template <class Space = host, class T>
void require_finite_parameters(std::string_view what, const std::vector<ParameterInfo>& infos,
                               const T* values, std::size_t count) {
  if (all_finite<Space>(values, count)) return;
  const std::size_t bad = first_nonfinite<Space>(values, count).value_or(0);
  T value = 0;
  copy_elements<Space, host>(values + bad, &value, 1);
  for (const auto& info : infos)
    if (bad >= std::size_t(info.offset) && bad < std::size_t(info.offset + info.size))
      fail(what, ": parameter '", info.name, "' holds ", nonfinite_text(value), " at its element ",
           bad - std::size_t(info.offset), " (of ", info.size,
           "); weights that are not finite are neither saved nor used");
  fail(what, ": element ", bad, " of the parameters holds ", nonfinite_text(value),
       "; weights that are not finite are neither saved nor used");
}

}  // namespace ldm::nn
