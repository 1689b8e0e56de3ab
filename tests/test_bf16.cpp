#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <ldm/ldm.hpp>
#include <limits>

using ldm::bf16;

namespace {
// The magnitude that bf16 bits stand for, in double, without IEEE's special case for the largest
// exponent: 0x7f80 decodes to 2^128, the value that a float rounds "up to" before overflowing.
double magnitude(std::uint16_t bits) {
  int exponent = (bits >> 7) & 0xff, mantissa = bits & 0x7f;
  return exponent == 0 ? std::ldexp(double(mantissa), -133)
                       : std::ldexp(double(128 + mantissa), exponent - 134);
}

// The reference: the nearer of the two candidates by distance in double, ties to the even one.
std::uint16_t reference_round(float value) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  std::uint16_t down = std::uint16_t((x >> 16) & 0x7fffu);
  if (std::isinf(value)) return std::uint16_t(sign | down);
  std::uint16_t up = std::uint16_t(down + 1);
  double v = std::abs(double(value));
  double d_down = v - magnitude(down), d_up = magnitude(up) - v;
  std::uint16_t chosen = d_down < d_up ? down : d_up < d_down ? up : ((down & 1u) ? up : down);
  return std::uint16_t(sign | chosen);
}
}  // namespace

TEST_CASE("bf16: every one of the 65,536 values survives a round trip through float") {
  int nan_count = 0;
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    bf16 b = bf16::from_bits(std::uint16_t(bits));
    float f = b;
    bf16 back(f);
    if (std::isnan(f)) {
      ++nan_count;
      REQUIRE(std::isnan(float(back)));
      // The sign survives; the payload may gain the quiet bit.
      REQUIRE((back.bits & 0x8000u) == (bits & 0x8000u));
    } else {
      REQUIRE(back.bits == bits);
    }
  }
  CHECK(nan_count == 2 * 127);  // exponent all ones, non-zero mantissa, both signs
}

TEST_CASE("bf16: conversion rounds to nearest, ties to even") {
  CHECK(bf16(1.0f).bits == 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  CHECK(bf16(1.0f + std::ldexp(1.0f, -8)).bits == 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even.
  CHECK(bf16(1.0f + 3 * std::ldexp(1.0f, -8)).bits == 0x3f82);
  CHECK(bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)).bits == 0x3f81);
  CHECK(bf16(-2.5f).bits == 0xc020);
  CHECK(std::isinf(float(bf16(std::numeric_limits<float>::max()))));
  CHECK(std::isinf(float(bf16(std::numeric_limits<float>::infinity()))));
  CHECK(float(bf16(std::numeric_limits<float>::denorm_min())) == 0.0f);

  // A sweep of float bit patterns against the reference rounding.
  for (std::uint64_t x = 0; x < (1ull << 32); x += 65521) {
    float f = std::bit_cast<float>(std::uint32_t(x));
    if (std::isnan(f)) continue;
    REQUIRE_MESSAGE(bf16(f).bits == reference_round(f), "float bits " << x);
  }
}

TEST_CASE("bf16: NaN stays NaN, including payloads that rounding would carry into infinity") {
  for (std::uint32_t payload : {0x00000001u, 0x0000ffffu, 0x007fffffu, 0x00400000u}) {
    for (std::uint32_t sign : {0u, 0x80000000u}) {
      float nan = std::bit_cast<float>(sign | 0x7f800000u | payload);
      REQUIRE(std::isnan(nan));
      CHECK(std::isnan(float(bf16(nan))));
    }
  }
}
