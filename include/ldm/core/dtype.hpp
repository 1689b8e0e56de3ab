#pragma once
/// @file
/// Element types: float, and bf16 as a storage type whose arithmetic happens in float.

#include <bit>
#include <cstdint>
#include <type_traits>

#include "ldm/core/macros.hpp"

namespace ldm {

/// bfloat16: the top 16 bits of an IEEE float. Conversion from float rounds to nearest, ties to
/// even, and keeps NaN a NaN (rounding must not carry a NaN's payload into the exponent and turn
/// it into infinity). The layout is that of __nv_bfloat16, so device buffers can be reinterpreted.
struct bf16 {
  std::uint16_t bits = 0;  ///< The bit pattern.

  bf16() = default;  ///< Zero.
  /// `value` rounded to nearest, ties to even.
  LDM_HD explicit bf16(float value) : bits(round_from(value)) {}

  /// The bf16 with this bit pattern.
  LDM_HD static constexpr bf16 from_bits(std::uint16_t raw) {
    bf16 b;
    b.bits = raw;
    return b;
  }

  /// The value as a float (exact).
  LDM_HD operator float() const {
    std::uint32_t wide = std::uint32_t(bits) << 16;
    return bit_cast_float(wide);
  }

 private:
  LDM_HD static std::uint16_t round_from(float value) {
    std::uint32_t x = bit_cast_u32(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x0040u);  // quiet NaN
    std::uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return std::uint16_t(x >> 16);
  }
  LDM_HD static std::uint32_t bit_cast_u32(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    return std::bit_cast<std::uint32_t>(f);
#endif
  }
  LDM_HD static float bit_cast_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    return std::bit_cast<float>(u);
#endif
  }
};
static_assert(sizeof(bf16) == 2 && std::is_trivially_copyable_v<bf16>);

/// The type arithmetic on an element is done in: float for both float and bf16 storage.
template <class T>
struct compute_type {
  using type = T;  ///< T itself.
};
/// bf16 computes in float.
template <>
struct compute_type<bf16> {
  using type = float;  ///< float.
};
/// compute_type's type.
template <class T>
using compute_t = typename compute_type<T>::type;

/// Whether T can be a Tensor's element: float, bf16, double or std::int32_t.
template <class T>
inline constexpr bool is_element_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::int32_t>;

/// Element type names as safetensors spells them.
template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>)
    return "F32";
  else if constexpr (std::is_same_v<T, bf16>)
    return "BF16";
  else if constexpr (std::is_same_v<T, double>)
    return "F64";
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return "I32";
  else
    static_assert(sizeof(T) == 0, "ldm::dtype_name: unsupported element type");
}

}  // namespace ldm
