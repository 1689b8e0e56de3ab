#pragma once
/// @file
/// The enumerations a scheduler config states in strings, read and written under diffusers'
/// names. Beside each such enum E, `diffusers_names(E)` gives the config field that holds it and
/// the name of every enumerator; parse_name<E> and to_string serve them all, so an unknown name
/// is the same ldm::Error (naming the field and the accepted values) for every enum.

#include <array>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include "ldm/core/error.hpp"

namespace ldm::diffusion {

/// One enumerator and its name in diffusers' configs.
template <class E>
struct Named {
  std::string_view name;  ///< diffusers' spelling.
  E value;                ///< The enumerator.
};

/// What a config names an enum by: the key that holds it (for messages) and every enumerator's
/// name, once each.
template <class E, std::size_t K>
struct EnumNames {
  std::string_view field;         ///< The config key, such as "beta_schedule".
  std::array<Named<E>, K> table;  ///< Each enumerator and its name.
};

/// An enum whose namespace declares `constexpr EnumNames<E, K> diffusers_names(E)`, found by
/// argument-dependent lookup.
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E value) {
  { diffusers_names(value).field } -> std::convertible_to<std::string_view>;
  diffusers_names(value).table.size();
};

/// The enumerator of E that diffusers calls `name` (parse_name<BetaSchedule>("linear")).
/// @throws ldm::Error naming the field and the accepted names when `name` is none of them
template <NamedEnum E>
E parse_name(std::string_view name) {
  constexpr auto names = diffusers_names(E{});
  std::string accepted;
  for (const auto& entry : names.table) {
    if (entry.name == name) return entry.value;
    accepted += (accepted.empty() ? "one of " : ", ") + std::string(entry.name);
  }
  // The name may come from a file: cut it short so a hostile one cannot flood the message.
  constexpr std::size_t kShown = 64;
  std::string shown(name.substr(0, kShown));
  if (name.size() > kShown) shown += "...";
  fail_expected(names.field, accepted, "'" + shown + "'");
}

/// diffusers' name of an enumerator.
template <NamedEnum E>
constexpr std::string_view to_string(E value) {
  for (const auto& entry : diffusers_names(value).table)
    if (entry.value == value) return entry.name;
  assert(false && "an enumerator without a name");
  return {};
}

}  // namespace ldm::diffusion
