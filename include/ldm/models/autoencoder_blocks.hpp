#pragma once
// The autoencoder's blocks: diffusers' DownEncoderBlock2D and UpDecoderBlock2D (a stack of
// ResnetBlock2D without time embedding, then an optional resampler), and UNetMidBlock2D without
// time embedding (resnet, single-head attention, resnet).

#include <array>
#include <string>
#include <utility>

#include "ldm/models/module_list.hpp"
#include "ldm/nn.hpp"

namespace ldm::models {

enum class Resample { none, down, up };

// Layers resnets at resolution R: Cin -> Cout, then Cout -> Cout; then the resampler.
// `resnets.k` and `downsamplers.0` / `upsamplers.0` as diffusers names them.
template <class T, class Space, index_t R, index_t Cin, index_t Cout, index_t Layers, Resample Re,
          index_t Groups>
class ResnetStack {
  static_assert(Layers >= 1);
  using First = nn::ResnetBlock2D<T, Space, R, R, Cin, Cout, 0, Groups>;
  using Rest = nn::ResnetBlock2D<T, Space, R, R, Cout, Cout, 0, Groups>;
  using Down = nn::Downsample2D<T, Space, R, R, Cout, nn::DownsamplePadding::asymmetric>;
  using Up = nn::Upsample2D<T, Space, R, R, Cout>;
  using Resampler = std::conditional_t<
      Re == Resample::down, Down,
      std::conditional_t<Re == Resample::up, Up, nn::Identity<T, Space, R, R, Cout>>>;

 public:
  static constexpr index_t out_res = Re == Resample::down ? R / 2 : Re == Resample::up ? 2 * R : R;
  static constexpr index_t parameter_count =
      parameters_of<First, std::array<Rest, Layers - 1>, Resampler>;
  template <index_t N>
  using input = Shape<N, R, R, Cin>;
  template <index_t N>
  using output = Shape<N, out_res, out_res, Cout>;

  template <index_t N>
  struct Saved {
    typename First::template Saved<N> first;
    std::array<typename Rest::template Saved<N>, Layers - 1> rest;
    std::array<Tensor<T, Shape<N, R, R, Cout>, Space>, Layers> outs;  // each resnet's output
    typename Resampler::template Saved<N> resampler;
  };

  // backward: grad and next beside each submodule's.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    const auto first = nn::scratch_of<First, N>(host), rest = nn::scratch_of<Rest, N>(host),
               resampler = nn::scratch_of<Resampler, N>(host);
    return {nn::peak(first.forward, rest.forward, resampler.forward),
            2 * nn::bytes_of<Tensor<T, Shape<N, R, R, Cout>, Space>> +
                nn::peak(resampler.backward, rest.backward, first.backward)};
  }

  ResnetStack(nn::ParameterBinder<T, Space> b, double eps)
      : first(b.scope("resnets").scope("0"), eps),
        rest(make_array<Layers - 1>(
            [&](auto k) { return Rest(b.scope("resnets").scope(std::to_string(k + 1)), eps); })),
        resampler(bind_if<Resampler, Re != Resample::none>(
            b.scope(Re == Resample::down ? "downsamplers" : "upsamplers").scope("0"))) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& s, View<T, output<N>, Space> y,
               const nn::Mode& mode = nn::inference) const {
    first.forward(x, s.first, s.outs[0].view(), mode);
    for (std::size_t k = 0; k + 1 < Layers; ++k)
      rest[k].forward(s.outs[k], s.rest[k], s.outs[k + 1].view(), mode);
    resampler.forward(s.outs[Layers - 1], s.resampler, y, mode);
  }

  // Accumulates parameter gradients; overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    Tensor<T, Shape<N, R, R, Cout>, Space> grad(uninitialized), next(uninitialized);
    resampler.backward(s.outs[Layers - 1], s.resampler, dy, grad.view());
    for (std::size_t k = Layers - 1; k >= 1; --k) {
      rest[k - 1].backward(s.outs[k - 1], s.rest[k - 1], grad, next.view());
      std::swap(grad, next);
    }
    first.backward(x, s.first, grad, dx);
  }

  First first;
  std::array<Rest, Layers - 1> rest;
  [[no_unique_address]] Resampler resampler;
};

// UNetMidBlock2D as the autoencoder builds it: resnets.0, attentions.0 (one head over all
// channels), resnets.1.
template <class T, class Space, index_t R, index_t C, index_t Groups>
class AutoencoderMidBlock {
  using Res = nn::ResnetBlock2D<T, Space, R, R, C, C, 0, Groups>;
  using Attn = nn::Attention<T, Space, R, R, C, C, Groups>;

 public:
  static constexpr index_t parameter_count = parameters_of<Res, Attn, Res>;
  template <index_t N>
  using shape = Shape<N, R, R, C>;
  template <index_t N>
  using input = shape<N>;
  template <index_t N>
  using output = shape<N>;

  template <index_t N>
  struct Saved {
    typename Res::template Saved<N> res0, res1;
    typename Attn::template Saved<N> attn;
    Tensor<T, shape<N>, Space> after_res0, after_attn;
  };

  // backward: g1 and g2 beside each submodule's.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    const auto res = nn::scratch_of<Res, N>(host), attn = nn::scratch_of<Attn, N>(host);
    return {nn::peak(res.forward, attn.forward),
            2 * nn::bytes_of<Tensor<T, shape<N>, Space>> + nn::peak(res.backward, attn.backward)};
  }

  AutoencoderMidBlock(nn::ParameterBinder<T, Space> b, double eps)
      : res0(b.scope("resnets").scope("0"), eps),
        attn(b.scope("attentions").scope("0"), eps),
        res1(b.scope("resnets").scope("1"), eps) {}

  template <index_t N>
  void forward(View<const T, shape<N>, Space> x, Saved<N>& s, View<T, shape<N>, Space> y,
               const nn::Mode& mode = nn::inference) const {
    res0.forward(x, s.res0, s.after_res0.view(), mode);
    attn.forward(s.after_res0, s.attn, s.after_attn.view(), mode);
    res1.forward(s.after_attn, s.res1, y, mode);
  }

  template <index_t N>
  void backward(View<const T, shape<N>, Space> x, const Saved<N>& s,
                View<const T, shape<N>, Space> dy, View<T, shape<N>, Space> dx) const {
    Tensor<T, shape<N>, Space> g1(uninitialized), g2(uninitialized);
    res1.backward(s.after_attn, s.res1, dy, g1.view());
    attn.backward(s.after_res0, s.attn, g1, g2.view());
    res0.backward(x, s.res0, g2, dx);
  }

  Res res0;
  Attn attn;
  Res res1;
};

}  // namespace ldm::models
