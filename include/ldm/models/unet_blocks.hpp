#pragma once
// The UNet's levels, as diffusers' DownBlock2D / AttnDownBlock2D / CrossAttnDownBlock2D and
// UpBlock2D / AttnUpBlock2D / CrossAttnUpBlock2D.
//
// Skip connections: every tensor a down level hands to the up path (each resnet's output, after
// its attention, and the downsampler's output) lives in one tuple of skip tensors owned by the
// UNet, with a twin tuple of gradient accumulators. A down level writes its skips; an up level
// reads them and adds their gradients; a down level's backward starts from those gradients plus
// what the next stage sent back. So every consumer of a tensor adds to one accumulator, and the
// fork of a skip needs no special case.
//
// UNet2DModel and UNet2DConditionModel share these levels; only the attention after each resnet
// differs (diffusers' Attention, or a Transformer2DModel reading a context). A level of a model
// with a context (Tokens > 0) passes the context to its attentions and adds their context
// gradients up; one without passes NoContext around.

#include <array>
#include <string>
#include <type_traits>

#include "ldm/models/config.hpp"
#include "ldm/models/module_list.hpp"
#include "ldm/nn.hpp"

namespace ldm::models {

// Where the skips come from, in the order diffusers pushes them: conv_in's output, then per down
// level its layers_per_block resnet outputs and (but for the last level) its downsampler output.
template <class Cfg, index_t Res>
struct SkipLayout {
  using Ch = typename Cfg::block_out_channels;
  static constexpr index_t layers = Cfg::layers_per_block;
  static constexpr int levels = Cfg::levels;
  static constexpr std::size_t count = 1 + std::size_t(levels) * (layers + 1) - 1;

  // First skip index of down level l.
  static constexpr std::size_t first_of_level(int l) { return 1 + std::size_t(l) * (layers + 1); }
  static constexpr index_t resolution(std::size_t j) {
    if (j == 0) return Res;
    const std::size_t level = (j - 1) / (layers + 1), k = (j - 1) % (layers + 1);
    return k < std::size_t(layers) ? (Res >> level) : (Res >> (level + 1));
  }
  static constexpr index_t channels(std::size_t j) {
    return j == 0 ? Ch::first : Ch::at(int((j - 1) / (layers + 1)));
  }
  template <std::size_t J, index_t N>
  using shape = Shape<N, resolution(J), resolution(J), channels(J)>;
};

template <class T, class Space, class Cfg, index_t Res, index_t N>
struct SkipTensors {
  using Layout = SkipLayout<Cfg, Res>;
  template <std::size_t... J>
  static auto make(std::index_sequence<J...>)
      -> std::tuple<Tensor<T, typename Layout::template shape<J, N>, Space>...>;
  using type = decltype(make(std::make_index_sequence<Layout::count>{}));
};

struct NoContext {};

// What a level's attentions read besides the image: nothing (Tokens = 0), or a [N, Tokens,
// cross_attention_dim] context whose gradient backward adds into a view (which may be null: the
// caller does not want it), holding a temporary of `bytes` beside an attention's backward.
template <class T, class Space, class Cfg, index_t Tokens, index_t N>
struct LevelContext {
  using view = NoContext;
  using grad = NoContext;
  static constexpr std::size_t bytes = 0;
};
template <class T, class Space, class Cfg, index_t Tokens, index_t N>
requires(Tokens > 0) struct LevelContext<T, Space, Cfg, Tokens, N> {
  using shape = Shape<N, Tokens, Cfg::cross_attention_dim>;
  using view = View<const T, shape, Space>;
  using grad = View<T, shape, Space>;
  static constexpr std::size_t bytes = nn::bytes_of<Tensor<T, shape, Space>>;
};

// The attention after each resnet of level L at resolution R (With false: none): diffusers'
// Attention with heads of attention_head_dim channels (UNet2DModel), or a Transformer2DModel of
// heads(L) heads over the context (UNet2DConditionModel). The mid block's is level levels - 1's.
template <class T, class Space, class Cfg, index_t Tokens, index_t R, int L, bool With>
constexpr auto level_attention() {
  constexpr index_t C = Cfg::block_out_channels::at(L), G = Cfg::norm_num_groups;
  if constexpr (!With)
    return std::type_identity<nn::Absent>{};
  else if constexpr (Tokens == 0)
    return std::type_identity<nn::Attention<T, Space, R, R, C, Cfg::attention_head_dim, G>>{};
  else
    return std::type_identity<nn::Transformer2DModel<
        T, Space, R, R, C, Cfg::heads(L), Cfg::head_dim(L), Tokens, Cfg::cross_attention_dim,
        Cfg::transformer_layers(L), G,
        Cfg::use_linear_projection ? nn::TokenProjection::linear : nn::TokenProjection::conv1x1>>{};
}
template <class T, class Space, class Cfg, index_t Tokens, index_t R, int L, bool With>
using LevelAttention =
    typename decltype(level_attention<T, Space, Cfg, Tokens, R, L, With>())::type;

// Binds one: Attention's GroupNorm takes the UNet's norm_eps, a Transformer2DModel the
// transformers' LayerNorm eps.
template <class Attn, class Cfg, index_t Tokens, class T, class Space>
Attn make_level_attention(nn::ParameterBinder<T, Space> b) {
  if constexpr (std::is_same_v<Attn, nn::Absent>)
    return Attn{};
  else if constexpr (Tokens == 0)
    return Attn(b, Cfg::norm_eps);
  else
    return Attn(b, Cfg::transformer_norm_eps);
}

// The Saved<N> of a level's K attentions, or a placeholder where it has none.
template <class Attn, index_t N, std::size_t K>
struct AttentionSaved {
  using type = std::array<typename Attn::template Saved<N>, K>;
};
template <index_t N, std::size_t K>
struct AttentionSaved<nn::Absent, N, K> {
  using type = char;
};

template <class Attn, class X, class Context, class S, class Y>
void attention_forward(const Attn& attention, const X& x, Context context, S& saved, Y y,
                       const nn::Mode& mode) {
  if constexpr (std::is_same_v<Context, NoContext>)
    attention.forward(x, saved, y, mode);
  else
    attention.forward(x, context, saved, y, mode);
}

// Overwrites dx; adds the context's gradient into dcontext unless that is null.
template <class Attn, class X, class Context, class S, class DY, class DX, class DContext>
void attention_backward(const Attn& attention, const X& x, Context context, const S& saved,
                        const DY& dy, DX dx, DContext dcontext) {
  if constexpr (std::is_same_v<Context, NoContext>) {
    attention.backward(x, saved, dy, dx);
  } else {
    Tensor<typename DContext::value_type, typename DContext::shape, typename DContext::space> d;
    attention.backward(x, context, saved, dy, dx, d.view());
    if (dcontext.data()) dcontext += d;
  }
}

template <class T, class Space, class Cfg, index_t Res, int L, index_t Tokens>
class UNetDownLevel {
  using Ch = typename Cfg::block_out_channels;
  using Skips = SkipLayout<Cfg, Res>;
  static constexpr index_t R = Res >> L, Cin = L == 0 ? Ch::first : Ch::at(L - 1), C = Ch::at(L);
  static constexpr index_t K = Cfg::layers_per_block, E = Cfg::time_embed_dim,
                           G = Cfg::norm_num_groups;
  static constexpr bool with_attention = Cfg::attention_levels::contains(L);
  static constexpr bool with_downsample = L + 1 < Cfg::levels;
  static constexpr std::size_t j0 = Skips::first_of_level(L);
  using First = nn::ResnetBlock2D<T, Space, R, R, Cin, C, E, G>;
  using Rest = nn::ResnetBlock2D<T, Space, R, R, C, C, E, G>;
  using Attn = LevelAttention<T, Space, Cfg, Tokens, R, L, with_attention>;
  using Down = std::conditional_t<with_downsample, nn::Downsample2D<T, Space, R, R, C>, nn::Absent>;

 public:
  static constexpr index_t parameter_count =
      parameters_of<First, std::array<Rest, K - 1>, std::array<Attn, K>, Down>;
  // The skip index of this level's input (conv_in's output or the previous level's last skip).
  static constexpr std::size_t input_skip = j0 - 1;
  static constexpr std::size_t last_skip = j0 + K - (with_downsample ? 0 : 1);

  template <index_t N>
  struct Saved {
    typename First::template Saved<N> first;
    std::array<typename Rest::template Saved<N>, K - 1> rest;
    typename AttentionSaved<Attn, N, K>::type attn;
    std::conditional_t<with_attention, std::array<Tensor<T, Shape<N, R, R, C>, Space>, K>, char>
        before_attn;
  };

  // backward: the downsampler's dx; then dtemb_k, and per resnet dresnet_out (with attention)
  // beside the attention's (and its context gradient), then din beside the resnet's.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    using Out = Tensor<T, Shape<N, R, R, C>, Space>;
    const auto first = nn::scratch_of<First, N>(host), rest = nn::scratch_of<Rest, N>(host),
               attn = nn::scratch_of<Attn, N>(host), down = nn::scratch_of<Down, N>(host);
    const std::size_t attn_backward =
        with_attention ? LevelContext<T, Space, Cfg, Tokens, N>::bytes + attn.backward : 0;
    const std::size_t dresnet_out_bytes = with_attention ? nn::bytes_of<Out> : 0;
    const std::size_t first_backward = nn::peak(
        attn_backward, nn::bytes_of<Tensor<T, Shape<N, R, R, Cin>, Space>> + first.backward);
    const std::size_t rest_backward =
        K > 1 ? nn::peak(attn_backward, nn::bytes_of<Out> + rest.backward) : 0;
    return {nn::peak(first.forward, K > 1 ? rest.forward : 0, attn.forward, down.forward),
            nn::peak(with_downsample ? nn::bytes_of<Out> + down.backward : 0,
                     nn::bytes_of<Tensor<T, Shape<N, E>, Space>> + dresnet_out_bytes +
                         nn::peak(first_backward, rest_backward))};
  }

  UNetDownLevel(nn::ParameterBinder<T, Space> b, float dropout)
      : first(b.scope("resnets").scope("0"), Cfg::norm_eps, dropout),
        rest(make_array<K - 1>([&](auto k) {
          return Rest(b.scope("resnets").scope(std::to_string(k + 1)), Cfg::norm_eps, dropout);
        })),
        attentions(make_array<K>([&](auto k) {
          return make_level_attention<Attn, Cfg, Tokens>(
              b.scope("attentions").scope(std::to_string(k)));
        })),
        downsampler(bind_if<Down, with_downsample>(b.scope("downsamplers").scope("0"))) {}

  template <index_t N, class SkipTuple>
  void forward(View<const T, Shape<N, E>, Space> temb,
               typename LevelContext<T, Space, Cfg, Tokens, N>::view context, SkipTuple& skips,
               Saved<N>& s, const nn::Mode& mode) const {
    static_for<K>([&](auto k) {
      auto& out = std::get<j0 + k>(skips);
      auto& in = std::get<j0 + k - 1>(skips);
      auto target = [&]() -> Tensor<T, Shape<N, R, R, C>, Space>& {
        if constexpr (with_attention)
          return s.before_attn[k];
        else
          return out;
      };
      if constexpr (k == 0)
        first.forward(in, temb, s.first, target().view(), mode);
      else
        rest[k - 1].forward(in, temb, s.rest[k - 1], target().view(), mode);
      if constexpr (with_attention)
        attention_forward(attentions[k], s.before_attn[k], context, s.attn[k], out.view(), mode);
    });
    if constexpr (with_downsample)
      downsampler.forward(std::get<j0 + K - 1>(skips), {}, std::get<j0 + K>(skips).view(), mode);
  }

  // Starts from the gradients accumulated in `grads` for this level's skips; adds the gradient
  // of the level's input into grads[input_skip], the time-embedding gradient into dtemb and the
  // context gradient into dcontext.
  template <index_t N, class SkipTuple>
  void backward(View<const T, Shape<N, E>, Space> temb,
                typename LevelContext<T, Space, Cfg, Tokens, N>::view context,
                const SkipTuple& skips, SkipTuple& grads, const Saved<N>& s,
                View<T, Shape<N, E>, Space> dtemb,
                typename LevelContext<T, Space, Cfg, Tokens, N>::grad dcontext) const {
    if constexpr (with_downsample) {
      Tensor<T, Shape<N, R, R, C>, Space> dx(uninitialized);
      downsampler.backward(std::get<j0 + K - 1>(skips), {}, std::get<j0 + K>(grads), dx.view());
      std::get<j0 + K - 1>(grads) += dx;
    }
    Tensor<T, Shape<N, E>, Space> dtemb_k(uninitialized);
    static_for_reverse<K>([&](auto k) {
      const auto& in = std::get<j0 + k - 1>(skips);
      // Resnet k's output gradient: through the attention, or the level's own without one.
      auto dresnet_out = [&] {
        if constexpr (with_attention) {
          Tensor<T, Shape<N, R, R, C>, Space> d(uninitialized);
          attention_backward(attentions[k], s.before_attn[k], context, s.attn[k],
                             std::get<j0 + k>(grads), d.view(), dcontext);
          return d;
        } else {
          return View<const T, Shape<N, R, R, C>, Space>(std::get<j0 + k>(grads));
        }
      }();
      Tensor<T, typename std::remove_cvref_t<decltype(in)>::shape, Space> din(uninitialized);
      if constexpr (k == 0)
        first.backward(in, temb, s.first, dresnet_out, din.view(), dtemb_k.view());
      else
        rest[k - 1].backward(in, temb, s.rest[k - 1], dresnet_out, din.view(), dtemb_k.view());
      dtemb += dtemb_k;
      std::get<j0 + k - 1>(grads) += din;
    });
  }

  First first;
  std::array<Rest, K - 1> rest;
  std::array<Attn, K> attentions;
  [[no_unique_address]] Down downsampler;
};

// Up level I works at the resolution and channels of down level L = levels - 1 - I. Its
// layers_per_block + 1 resnets each take the running tensor concatenated with one skip, popped
// from the end of the skip stack.
template <class T, class Space, class Cfg, index_t Res, int I, index_t Tokens>
class UNetUpLevel {
  using Ch = typename Cfg::block_out_channels;
  using Skips = SkipLayout<Cfg, Res>;
  static constexpr int levels = Cfg::levels, L = levels - 1 - I;
  static constexpr index_t R = Res >> L, C = Ch::at(L), Prev = I == 0 ? Ch::last : Ch::at(L + 1);
  static constexpr index_t K = Cfg::layers_per_block + 1, E = Cfg::time_embed_dim,
                           G = Cfg::norm_num_groups;
  static constexpr bool with_attention = Cfg::attention_levels::contains(L);
  static constexpr bool with_upsample = I + 1 < levels;
  // Skip consumed by resnet k.
  static constexpr std::size_t skip_of(std::size_t k) {
    return Skips::count - 1 - std::size_t(I) * K - k;
  }
  template <std::size_t k>
  using Resnet =
      nn::ResnetBlock2D<T, Space, R, R, (k == 0 ? Prev : C) + Skips::channels(skip_of(k)), C, E, G>;
  using Resnets = indexed_tuple<Resnet, K>;
  using Attn = LevelAttention<T, Space, Cfg, Tokens, R, L, with_attention>;
  using Up = std::conditional_t<with_upsample, nn::Upsample2D<T, Space, R, R, C>,
                                nn::Identity<T, Space, R, R, C>>;

 public:
  static constexpr index_t out_res = with_upsample ? 2 * R : R;
  static constexpr index_t parameter_count = parameters_of<Resnets, std::array<Attn, K>, Up>;
  template <index_t N>
  using input = Shape<N, R, R, Prev>;
  template <index_t N>
  using output = Shape<N, out_res, out_res, C>;

  template <index_t N>
  struct Saved {
    inputs_of_each<T, Space, Resnets, N> concat;
    saved_of_each<Resnets, N> resnet;
    typename AttentionSaved<Attn, N, K>::type attn;
    std::conditional_t<with_attention, std::array<Tensor<T, Shape<N, R, R, C>, Space>, K>, char>
        before_attn;
    std::array<Tensor<T, Shape<N, R, R, C>, Space>, K> outs;
    typename Up::template Saved<N> up;
  };

  // backward: grad beside the upsampler's; then dtemb_k, and per resnet dresnet_out (with
  // attention) beside the attention's (and its context gradient), then dcat beside the resnet's,
  // then dskip.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    using Out = Tensor<T, Shape<N, R, R, C>, Space>;
    const auto attn = nn::scratch_of<Attn, N>(host), up = nn::scratch_of<Up, N>(host);
    const std::size_t attn_backward =
        with_attention ? LevelContext<T, Space, Cfg, Tokens, N>::bytes + attn.backward : 0;
    std::size_t forward = nn::peak(attn.forward, up.forward), resnets_backward = 0;
    static_for<K>([&](auto k) {
      const auto resnet = nn::scratch_of<Resnet<k>, N>(host);
      using Skip = Tensor<T, typename Skips::template shape<skip_of(k), N>, Space>;
      forward = nn::peak(forward, resnet.forward);
      resnets_backward =
          nn::peak(resnets_backward,
                   nn::peak(attn_backward,
                            nn::bytes_of<Tensor<T, typename Resnet<k>::template input<N>, Space>> +
                                nn::peak(resnet.backward, nn::bytes_of<Skip>)));
    });
    const std::size_t dresnet_out_bytes = with_attention ? nn::bytes_of<Out> : 0;
    return {forward,
            nn::bytes_of<Out> + nn::peak(up.backward, nn::bytes_of<Tensor<T, Shape<N, E>, Space>> +
                                                          dresnet_out_bytes + resnets_backward)};
  }

  UNetUpLevel(nn::ParameterBinder<T, Space> b, float dropout)
      : resnets(make_tuple<K>([&](auto k) {
          return Resnet<k>(b.scope("resnets").scope(std::to_string(k)), Cfg::norm_eps, dropout);
        })),
        attentions(make_array<K>([&](auto k) {
          return make_level_attention<Attn, Cfg, Tokens>(
              b.scope("attentions").scope(std::to_string(k)));
        })),
        upsampler(bind_if<Up, with_upsample>(b.scope("upsamplers").scope("0"))) {}

  template <index_t N, class SkipTuple>
  void forward(View<const T, input<N>, Space> x, View<const T, Shape<N, E>, Space> temb,
               typename LevelContext<T, Space, Cfg, Tokens, N>::view context,
               const SkipTuple& skips, Saved<N>& s, View<T, output<N>, Space> y,
               const nn::Mode& mode) const {
    static_for<K>([&](auto k) {
      auto& cat = std::get<k>(s.concat);
      ops::concat_channels(chain_input<k>(x, s.outs), std::get<skip_of(k)>(skips), cat.view());
      auto& target = [&]() -> Tensor<T, Shape<N, R, R, C>, Space>& {
        if constexpr (with_attention)
          return s.before_attn[k];
        else
          return s.outs[k];
      }();
      std::get<k>(resnets).forward(cat, temb, std::get<k>(s.resnet), target.view(), mode);
      if constexpr (with_attention)
        attention_forward(attentions[k], s.before_attn[k], context, s.attn[k], s.outs[k].view(),
                          mode);
    });
    upsampler.forward(s.outs[K - 1], s.up, y, mode);
  }

  // Accumulates parameter gradients, adds skip gradients into `grads`, the time-embedding
  // gradient into dtemb and the context gradient into dcontext, and overwrites dx.
  template <index_t N, class SkipTuple>
  void backward(View<const T, input<N>, Space> x, View<const T, Shape<N, E>, Space> temb,
                typename LevelContext<T, Space, Cfg, Tokens, N>::view context, SkipTuple& grads,
                const Saved<N>& s, View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx,
                View<T, Shape<N, E>, Space> dtemb,
                typename LevelContext<T, Space, Cfg, Tokens, N>::grad dcontext) const {
    (void)x;
    Tensor<T, Shape<N, R, R, C>, Space> grad(uninitialized);
    upsampler.backward(s.outs[K - 1], s.up, dy, grad.view());
    Tensor<T, Shape<N, E>, Space> dtemb_k(uninitialized);
    static_for_reverse<K>([&](auto k) {
      // Resnet k's output gradient: through the attention, or `grad` itself without one (the
      // resnet has read it before split_channels overwrites grad below).
      auto dresnet_out = [&] {
        if constexpr (with_attention) {
          Tensor<T, Shape<N, R, R, C>, Space> d(uninitialized);
          attention_backward(attentions[k], s.before_attn[k], context, s.attn[k], grad, d.view(),
                             dcontext);
          return d;
        } else {
          return View<const T, Shape<N, R, R, C>, Space>(grad);
        }
      }();
      auto& cat = std::get<k>(s.concat);
      Tensor<T, typename std::remove_cvref_t<decltype(cat)>::shape, Space> dcat(uninitialized);
      std::get<k>(resnets).backward(cat, temb, std::get<k>(s.resnet), dresnet_out, dcat.view(),
                                    dtemb_k.view());
      dtemb += dtemb_k;
      auto& dskip_total = std::get<skip_of(k)>(grads);
      Tensor<T, typename std::remove_cvref_t<decltype(dskip_total)>::shape, Space> dskip(
          uninitialized);
      if constexpr (k == 0) {
        ops::split_channels(
            View<const T, typename std::remove_cvref_t<decltype(cat)>::shape, Space>(dcat), dx,
            dskip.view());
      } else {
        ops::split_channels(
            View<const T, typename std::remove_cvref_t<decltype(cat)>::shape, Space>(dcat),
            grad.view(), dskip.view());
      }
      dskip_total += dskip;
    });
  }

  Resnets resnets;
  std::array<Attn, K> attentions;
  [[no_unique_address]] Up upsampler;
};

}  // namespace ldm::models
