// expect: level_list_holds_at_most_ldm_max_levels_entries
// Must not compile: a block_out_channels of more levels than a level_list holds.
#include <ldm/models/config.hpp>

int main() {
  constexpr ldm::UNetConfig good{.block_out_channels = {32, 32, 32, 32, 32, 32, 32, 32}};
  static_assert(good.block_out_channels.size() == ldm::max_levels);
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr ldm::UNetConfig bad{.block_out_channels = {32, 32, 32, 32, 32, 32, 32, 32, 32}};
  (void)bad;
#endif
  return 0;
}
