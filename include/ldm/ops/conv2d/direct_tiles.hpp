// The direct convolution's register tiles and band loops over one instruction set's vectors:
// not a header of its own. direct_simd.hpp includes it once per instruction set, inside that
// set's namespace, with V naming the vector operations (Avx2, Avx512) and LDM_DIRECT_TARGET the
// matching target attribute, so that the code is written once and compiled for each.
//
// Defines struct Kernels: the vector's lanes, the channel block (two vectors), forward_band and
// weight_band.

#ifndef LDM_DIRECT_TARGET
#error "direct_tiles.hpp is included by ldm/ops/conv2d/direct_simd.hpp only"
#endif

inline constexpr index_t kLanes = V::lanes, kBlock = 2 * V::lanes, kPixels = V::pixels,
                         kRows = V::rows;

// Output pixels in[0..PX) (window origins) x CV vectors of channels: acc = bias + the window
// sums, stored to out[p] for the first `valid` channels. w: the block's packed weights, CV
// vectors per (kh, kw, ci).
template <index_t CV, index_t PX>
LDM_DIRECT_TARGET void forward_tile(const Layout& s, const float* const* in, const float* w,
                                    const float* bias, float* const* out, index_t valid) {
  typename V::vec acc[PX][CV];
#pragma GCC unroll 2
  for (index_t v = 0; v < CV; ++v) {
    const typename V::vec b = V::load(bias + v * kLanes);
#pragma GCC unroll 16
    for (index_t p = 0; p < PX; ++p)
      acc[p][v] = b;
  }
  for (index_t t = 0; t < s.taps; ++t) {
    const float* src[PX];
#pragma GCC unroll 16
    for (index_t p = 0; p < PX; ++p)
      src[p] = in[p] + s.tap_offset[t];
    const float* wt = w + t * s.ci * CV * kLanes;
    for (index_t c = 0; c < s.ci; ++c) {
      typename V::vec wv[CV];
#pragma GCC unroll 2
      for (index_t v = 0; v < CV; ++v)
        wv[v] = V::load(wt + (c * CV + v) * kLanes);
#pragma GCC unroll 16
      for (index_t p = 0; p < PX; ++p) {
        const typename V::vec b = V::broadcast(src[p] + c);
#pragma GCC unroll 2
        for (index_t v = 0; v < CV; ++v)
          acc[p][v] = V::fmadd(b, wv[v], acc[p][v]);
      }
    }
  }
#pragma GCC unroll 2
  for (index_t v = 0; v < CV; ++v) {
    const index_t lanes = valid - v * kLanes;
    if (lanes >= kLanes) {
#pragma GCC unroll 16
      for (index_t p = 0; p < PX; ++p)
        V::store(out[p] + v * kLanes, acc[p][v]);
    } else {
      const typename V::mask mask = V::first(lanes);
#pragma GCC unroll 16
      for (index_t p = 0; p < PX; ++p)
        V::store(out[p] + v * kLanes, acc[p][v], mask);
    }
  }
}

// acc[j][.] = sum over a band's pixels of x(row j of the tile) * dy, for RC rows (kh, kw, ci)
// at offsets row_offset[j] from each pixel's window origin and CV vectors of channels; added to
// part[j * s.ld]. Masked: the block has fewer than kLanes * CV channels, so dy is read with a
// mask rather than past the next pixel's channels (or the end of dy).
template <index_t CV, index_t RC, bool Masked>
LDM_DIRECT_TARGET void weight_tile(const Layout& s, const float* const* window,
                                   const index_t* row_offset, index_t pixels, const float* dy,
                                   index_t valid, float* part) {
  typename V::vec acc[RC][CV];
#pragma GCC unroll 16
  for (index_t j = 0; j < RC; ++j)
#pragma GCC unroll 2
    for (index_t v = 0; v < CV; ++v)
      acc[j][v] = typename V::vec{};
  const typename V::mask mask = V::first(valid - (CV - 1) * kLanes);
  // One loop over the band's pixels, their windows from the table: a loop per output line costs
  // its set-up again on every line (14% of the time at width 8), and an origin computed as
  // buffer + offset becomes one more addition per row and pixel.
  const index_t co = s.co;
  for (index_t p = 0; p < pixels; ++p, dy += co) {
    const float* at = window[p];
    typename V::vec d[CV];
#pragma GCC unroll 2
    for (index_t v = 0; v < CV; ++v)
      d[v] = Masked && v == CV - 1 ? V::load(dy + v * kLanes, mask) : V::load(dy + v * kLanes);
#pragma GCC unroll 16
    for (index_t j = 0; j < RC; ++j) {
      const typename V::vec b = V::broadcast(at + row_offset[j]);
#pragma GCC unroll 2
      for (index_t v = 0; v < CV; ++v)
        acc[j][v] = V::fmadd(b, d[v], acc[j][v]);
    }
  }
  const index_t ld = s.ld;
#pragma GCC unroll 16
  for (index_t j = 0; j < RC; ++j)
#pragma GCC unroll 2
    for (index_t v = 0; v < CV; ++v) {
      float* dst = part + j * ld + v * kLanes;
      V::store(dst, V::load(dst) + acc[j][v]);
    }
}

// The tile shapes by channel vectors (and mask) and by pixels (1 to kPixels) or rows (1 to
// kRows): a band's last tile of pixels and a window's last tile of rows are short.
using ForwardTile = void (*)(const Layout&, const float* const*, const float*, const float*,
                             float* const*, index_t);
using WeightTile = void (*)(const Layout&, const float* const*, const index_t*, index_t,
                            const float*, index_t, float*);

template <index_t CV, std::size_t... R>
constexpr std::array<ForwardTile, kPixels> forward_tiles(std::index_sequence<R...>) {
  return {forward_tile<CV, index_t(R) + 1>...};
}
template <index_t CV, bool Masked, std::size_t... R>
constexpr std::array<WeightTile, kRows> weight_tiles(std::index_sequence<R...>) {
  return {weight_tile<CV, index_t(R) + 1, Masked>...};
}

struct Kernels {
  static constexpr index_t lanes = kLanes, block = kBlock;

  // One band of output lines from its filled buffer, window[p] pointing at pixel p's window
  // there. w is packed [block][kh][kw][ci][the block's channels] (kBlock, or kLanes for a last
  // block that one vector holds), bias padded to whole vectors; y_band points at the band's
  // first output pixel.
  LDM_DIRECT_TARGET static void forward_band(const Layout& s, const float* const* window,
                                             index_t pixels, const float* w, const float* bias,
                                             float* y_band) {
    constexpr auto sizes = std::make_index_sequence<kPixels>();
    static constexpr std::array<ForwardTile, kPixels> tiles[2] = {forward_tiles<1>(sizes),
                                                                  forward_tiles<2>(sizes)};
    for (index_t b = 0; b * kBlock < s.co; ++b) {
      const index_t valid = std::min(kBlock, s.co - b * kBlock);
      const float* wb = w + b * kBlock * s.k;
      for (index_t p0 = 0; p0 < pixels; p0 += kPixels) {
        float* out[kPixels];
        const index_t px = std::min(kPixels, pixels - p0);
        for (index_t i = 0; i < px; ++i)
          out[i] = y_band + (p0 + i) * s.co + b * kBlock;
        tiles[valid > kLanes][px - 1](s, window + p0, wb, bias + b * kBlock, out, valid);
      }
    }
  }

  // part[(kh, kw, ci)][co] += one band's contribution to dw; dy_band points at the band's first
  // output pixel.
  LDM_DIRECT_TARGET static void weight_band(const Layout& s, const float* const* window,
                                            index_t pixels, const float* dy_band, float* part) {
    constexpr auto sizes = std::make_index_sequence<kRows>();
    static constexpr std::array<WeightTile, kRows> tiles[2][2] = {
        {weight_tiles<1, false>(sizes), weight_tiles<2, false>(sizes)},
        {weight_tiles<1, true>(sizes), weight_tiles<2, true>(sizes)}};
    // The tap and input channel of row q0 + j, counted rather than divided out.
    index_t tap = 0, c = 0;
    for (index_t q0 = 0; q0 < s.k; q0 += kRows) {
      const index_t count = std::min(kRows, s.k - q0);
      index_t row_offset[kRows];
      for (index_t j = 0; j < count; ++j) {
        row_offset[j] = s.tap_offset[tap] + c;
        if (++c == s.ci) c = 0, ++tap;
      }
      for (index_t b = 0; b * kBlock < s.co; ++b) {
        const index_t valid = std::min(kBlock, s.co - b * kBlock);
        const bool masked = valid % kLanes != 0;
        tiles[masked][valid > kLanes][count - 1](s, window, row_offset, pixels,
                                                 dy_band + b * kBlock, valid,
                                                 part + q0 * s.ld + b * kBlock);
      }
    }
  }
};
