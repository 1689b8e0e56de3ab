#pragma once
/// @file
/// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
/// counter-based generator, so a draw is a pure function of (seed, offset, element index) and the
/// same element gets the same number however work is split among threads, batches or devices.
///
/// Streams: a stream is (seed, offset). Element i of a stream comes from Philox block i / 4, lane
/// i % 4, with counter {block lo, block hi, offset lo, offset hi} and key {seed lo, seed hi}.
/// Callers that draw several tensors from one seed give each draw its own offset.

#include <math.h>
#include <cstdint>

#include "ldm/core/macros.hpp"

namespace ldm {

/// The Philox-4x32-10 block function.
struct Philox4x32 {
  /// Four 32-bit random words.
  struct Block {
    std::uint32_t v[4];  ///< The words, one per lane.
  };

  /// Block `block` of the stream (seed, offset): ten rounds on the counter {block lo, block hi,
  /// offset lo, offset hi} with the key {seed lo, seed hi}.
  LDM_HD static Block generate(std::uint64_t seed, std::uint64_t offset, std::uint64_t block) {
    std::uint32_t c0 = std::uint32_t(block), c1 = std::uint32_t(block >> 32);
    std::uint32_t c2 = std::uint32_t(offset), c3 = std::uint32_t(offset >> 32);
    std::uint32_t k0 = std::uint32_t(seed), k1 = std::uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      std::uint64_t p0 = std::uint64_t(kMul0) * c0;
      std::uint64_t p1 = std::uint64_t(kMul1) * c2;
      std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
      std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
      std::uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
      c0 = n0, c1 = n1, c2 = n2, c3 = n3;
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    return Block{{c0, c1, c2, c3}};
  }

  /// @{
  /// The round multipliers and key increments of Philox-4x32 (the paper's constants).
  static constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  static constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  /// @}
};

/// A uniform float in the open interval (0, 1), for every 32-bit x: 0 < uint_to_open_unit(x) < 1
/// (Box-Muller takes a logarithm of it; dropout compares it with p).
///
/// The top 24 bits k give (k + 1/2) / 2^24 rounded to float. Below 2^23 that is exact; above, the
/// half is a tie that rounds to the even neighbour, and at k = 2^24 - 1 the neighbour is 2^24: the
/// quotient would be exactly 1. Those inputs (x >= 0xFFFFFF00, 256 of 2^32) give the largest float
/// below 1, 1 - 2^-24, instead (the other neighbour of the tie); every other input gives the value
/// it always gave, so the streams, and everything drawn from them, are unchanged elsewhere.
/// The smallest value, at x < 256, is 2^-25.
LDM_HD inline float uint_to_open_unit(std::uint32_t x) {
  constexpr float below_one = 1.0f - 1.0f / 16777216.0f;  // 1 - 2^-24: the float before 1
  const float u = (float(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
  return u < below_one ? u : below_one;
}

/// Element i of the uniform stream (seed, offset), in the open interval (0, 1).
LDM_HD inline float uniform(std::uint64_t seed, std::uint64_t offset, std::uint64_t i) {
  return uint_to_open_unit(Philox4x32::generate(seed, offset, i / 4).v[i % 4]);
}

/// Element i of the standard normal stream (seed, offset). Box-Muller on lanes (0, 1) gives
/// elements 4b and 4b+1, lanes (2, 3) give 4b+2 and 4b+3. Computed in double and rounded once, so
/// that host and device agree bit for bit except in the rarest rounding ties.
LDM_HD inline float normal(std::uint64_t seed, std::uint64_t offset, std::uint64_t i) {
  auto block = Philox4x32::generate(seed, offset, i / 4);
  unsigned pair = unsigned(i % 4) / 2 * 2;
  double u1 = uint_to_open_unit(block.v[pair]);
  double u2 = uint_to_open_unit(block.v[pair + 1]);
  double radius = ::sqrt(-2.0 * ::log(u1));
  double angle = 6.283185307179586476925286766559 * u2;
  return float(i % 2 == 0 ? radius * ::cos(angle) : radius * ::sin(angle));
}

}  // namespace ldm
