#pragma once
// How the direct convolutions (ops/conv2d/direct_simd.hpp) split a convolution, from its sizes at
// run time: output lines in bands of about 96 pixels, each band's input lines copied zero-padded
// into a buffer of the thread's own. The kernels and the memory plans' scratch accounting
// (ops/conv2d_scratch.hpp) both read the split from here, so they cannot disagree, and the kernels
// are compiled once per instruction set rather than once per shape.

#include <algorithm>

#include "ldm/core/shape.hpp"

namespace ldm::ops::detail::direct {

// A convolution's sizes: input NHWC, output channels, window, stride, padding and output size.
struct Problem {
  index_t n, h, w, ci, co;
  index_t kh, kw, stride, pad_top, pad_left, pad_right;
  index_t ho, wo;
};

// The problem of geometry G (a Conv2dGeometry) over P (ops/conv2d/host.hpp's Conv2dProblem).
template <class G, class P>
constexpr Problem problem_of() {
  return {P::n,      P::h,       P::w,        P::ci,        P::co, G::kh, G::kw,
          G::stride, G::pad_top, G::pad_left, G::pad_right, P::ho, P::wo};
}

struct Bands {
  index_t wp;             // the zero-padded input width
  index_t taps;           // kh * kw
  index_t k;              // taps * ci: one window
  index_t ld;             // the row length of a partial dw: co rounded up to 16
  index_t band_lines;     // output lines per band
  index_t bands;          // per image
  index_t items;          // bands of the whole batch
  index_t buffer_lines;   // input lines one band reads
  index_t buffer_floats;  // a band's buffer
  index_t band_pixels;    // output pixels of a full band

  constexpr explicit Bands(const Problem& p)
      : wp(p.w + p.pad_left + p.pad_right),
        taps(p.kh * p.kw),
        k(taps * p.ci),
        ld((p.co + 15) / 16 * 16),
        band_lines(std::clamp<index_t>((96 + p.wo - 1) / p.wo, 1, p.ho)),
        bands((p.ho + band_lines - 1) / band_lines),
        items(p.n * bands),
        buffer_lines((band_lines - 1) * p.stride + p.kh),
        buffer_floats(buffer_lines * wp * p.ci),
        band_pixels(band_lines * p.wo) {}

  // The weight gradient's partial sums: a count fixed by the problem alone, so the summation
  // order is too.
  constexpr index_t weight_groups() const { return std::min<index_t>(items, 8); }
};

// Output channels packed as whole vectors of `lanes` floats.
constexpr index_t packed_channels(index_t co, index_t lanes) {
  return (co + lanes - 1) / lanes * lanes;
}

}  // namespace ldm::ops::detail::direct
