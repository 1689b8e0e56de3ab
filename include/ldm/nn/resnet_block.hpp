#pragma once
// ResnetBlock2D as diffusers builds it (pre-norm, time_embedding_norm "default", output scale 1):
//   h = conv1(silu(norm1(x)));  h += time_emb_proj(silu(temb)) per channel   (when TembC > 0)
//   h = conv2(dropout(silu(norm2(h))));  y = shortcut(x) + h
// where shortcut is the 1x1 `conv_shortcut` when the channel count changes, else the identity.

#include <cstdint>
#include <optional>

#include "ldm/nn/conv2d.hpp"
#include "ldm/nn/group_norm.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/ops/activation.hpp"

namespace ldm::nn {

template <class T, class Space, index_t H, index_t W, index_t Ci, index_t Co, index_t TembC,
          index_t Groups>
class ResnetBlock2D {
  static constexpr bool has_temb = TembC > 0;
  static constexpr bool has_shortcut = Ci != Co;
  using Norm1 = GroupNorm<T, Space, Ci, Groups, Activation::silu>;
  using Norm2 = GroupNorm<T, Space, Co, Groups, Activation::silu>;
  using Conv1 = Conv2d<T, Space, H, W, Ci, Co>;
  using Conv2 = Conv2d<T, Space, H, W, Co, Co>;
  using TimeProj =
      std::conditional_t<has_temb, Linear<T, Space, (has_temb ? TembC : 1), Co>, Absent>;
  using Shortcut =
      std::conditional_t<has_shortcut, Conv2d<T, Space, H, W, Ci, Co, ops::conv_same<1>>, Absent>;

 public:
  using value_type = T;
  static constexpr index_t parameter_count = Norm1::parameter_count + Conv1::parameter_count +
                                             TimeProj::parameter_count + Norm2::parameter_count +
                                             Conv2::parameter_count + Shortcut::parameter_count;
  template <index_t N>
  using input = Shape<N, H, W, Ci>;
  template <index_t N>
  using output = Shape<N, H, W, Co>;
  // The time embedding a block takes; a block without one takes Shape<N, 1> and ignores it.
  template <index_t N>
  using temb_shape = Shape<N, (has_temb ? TembC : 1)>;

  // Everything backward reads, plus its own scratch, sized for batch N.
  template <index_t N>
  struct Saved {
    typename Norm1::template Saved<N> norm1;
    typename Norm2::template Saved<N> norm2;
    Tensor<T, input<N>, Space> a1;   // silu(norm1(x)): conv1's input
    Tensor<T, output<N>, Space> h1;  // conv1(a1) + time projection: norm2's input
    Tensor<T, output<N>, Space> a2;  // dropout(silu(norm2(h1))): conv2's input
    // Only blocks with a time embedding use these; the others keep one element each.
    Tensor<T, std::conditional_t<has_temb, temb_shape<N>, Shape<1>>, Space> temb_act;
    Tensor<T, std::conditional_t<has_temb, Shape<N, Co>, Shape<1>>, Space> temb_proj;
    std::uint64_t dropout_seed = 0, dropout_stream = 0, dropout_first = 0;
    bool dropped = false;
  };

  // forward: the shortcut's output beside its convolution; backward: da2 and dh1, then the time
  // projection's dproj and dact, then da1 (and dshort) beside the convolutions.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    using Out = Tensor<T, output<N>, Space>;
    using In = Tensor<T, input<N>, Space>;
    const std::size_t shortcut_forward =
        has_shortcut ? bytes_of<Out> + scratch_of<Shortcut, N>(host).forward : 0;
    const std::size_t time_backward =
        has_temb ? bytes_of<Tensor<T, Shape<N, Co>, Space>, Tensor<T, temb_shape<N>, Space>> +
                       scratch_of<TimeProj, N>(host).backward
                 : 0;
    const std::size_t shortcut_backward =
        has_shortcut ? bytes_of<In> + scratch_of<Shortcut, N>(host).backward : 0;
    return {peak(scratch_of<Conv1, N>(host).forward, scratch_of<Conv2, N>(host).forward,
                 shortcut_forward),
            2 * bytes_of<Out> +
                peak(scratch_of<Conv2, N>(host).backward, time_backward,
                     bytes_of<In> + peak(scratch_of<Conv1, N>(host).backward, shortcut_backward))};
  }

  ResnetBlock2D(ParameterBinder<T, Space> b, double eps, float dropout = 0)
      : layer_id(std::uint64_t(b.cursor())),
        norm1(b.scope("norm1"), eps),
        conv1(b.scope("conv1")),
        time_emb_proj(make_time_proj(b)),
        norm2(b.scope("norm2"), eps),
        conv2(b.scope("conv2")),
        conv_shortcut(make_shortcut(b)),
        dropout(dropout) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, View<const T, temb_shape<N>, Space> temb,
               Saved<N>& s, View<T, output<N>, Space> y, const Mode& mode = inference) const {
    norm1.forward(x, s.norm1, s.a1.view());
    conv1.forward(s.a1, {}, s.h1.view());
    if constexpr (has_temb) {
      s.temb_act = silu(temb);
      time_emb_proj.forward(s.temb_act, {}, s.temb_proj.view());
      s.h1 += broadcast<output<N>, 1, 2>(s.temb_proj);
    }
    norm2.forward(s.h1, s.norm2, s.a2.view());
    s.dropped = mode.training && dropout > 0;
    if (s.dropped) {
      s.dropout_seed = mode.seed;
      s.dropout_stream = mode.stream_for(layer_id);
      s.dropout_first = mode.first_sample * std::uint64_t(output<N>::size / N);
      ops::dropout_forward(View<const T, output<N>, Space>(s.a2), dropout, s.dropout_seed,
                           s.dropout_stream, s.a2.view(), s.dropout_first);
    }
    conv2.forward(s.a2, {}, y);
    if constexpr (has_shortcut) {
      Tensor<T, output<N>, Space> shortcut(uninitialized);
      conv_shortcut.forward(x, {}, shortcut.view());
      y += shortcut;
    } else {
      y += x;
    }
  }

  // A block without a time embedding (the autoencoder's) takes none.
  template <index_t N>
  requires(!has_temb) void forward(View<const T, input<N>, Space> x, Saved<N>& s,
                                   View<T, output<N>, Space> y,
                                   const Mode& mode = inference) const {
    forward(x, View<const T, temb_shape<N>, Space>(nullptr), s, y, mode);
  }
  template <index_t N>
  requires(!has_temb) void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                                    View<const T, output<N>, Space> dy,
                                    View<T, input<N>, Space> dx) const {
    backward(x, View<const T, temb_shape<N>, Space>(nullptr), s, dy, dx,
             View<T, temb_shape<N>, Space>(nullptr));
  }

  // Accumulates parameter gradients; overwrites dx and, with a time embedding, dtemb.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, View<const T, temb_shape<N>, Space> temb,
                const Saved<N>& s, View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx,
                View<T, temb_shape<N>, Space> dtemb) const {
    Tensor<T, output<N>, Space> da2(uninitialized), dh1(uninitialized);
    conv2.backward(s.a2, {}, dy, da2.view());
    if (s.dropped)
      ops::dropout_backward(View<const T, output<N>, Space>(da2), dropout, s.dropout_seed,
                            s.dropout_stream, da2.view(), s.dropout_first);
    norm2.backward(s.h1, s.norm2, da2, dh1.view());
    if constexpr (has_temb) {
      Tensor<T, Shape<N, Co>, Space> dproj(uninitialized);
      dproj = sum<1, 2>(dh1);
      Tensor<T, temb_shape<N>, Space> dact(uninitialized);
      time_emb_proj.backward(s.temb_act, {}, dproj, dact.view());
      ops::silu_backward(temb, View<const T, temb_shape<N>, Space>(dact), dtemb);
    }
    Tensor<T, input<N>, Space> da1(uninitialized);
    conv1.backward(s.a1, {}, dh1, da1.view());
    norm1.backward(x, s.norm1, da1, dx);
    if constexpr (has_shortcut) {
      Tensor<T, input<N>, Space> dshort(uninitialized);
      conv_shortcut.backward(x, {}, dy, dshort.view());
      dx += dshort;
    } else {
      dx += dy;
    }
  }

  // Names this block's dropout stream: the offset of its first parameter, unique in a model.
  std::uint64_t layer_id;
  Norm1 norm1;
  Conv1 conv1;
  [[no_unique_address]] TimeProj time_emb_proj;
  Norm2 norm2;
  Conv2 conv2;
  [[no_unique_address]] Shortcut conv_shortcut;
  float dropout;

 private:
  static TimeProj make_time_proj(ParameterBinder<T, Space> b) {
    if constexpr (has_temb)
      return TimeProj(b.scope("time_emb_proj"));
    else
      return TimeProj{};
  }
  static Shortcut make_shortcut(ParameterBinder<T, Space> b) {
    if constexpr (has_shortcut)
      return Shortcut(b.scope("conv_shortcut"));
    else
      return Shortcut{};
  }
};

}  // namespace ldm::nn
