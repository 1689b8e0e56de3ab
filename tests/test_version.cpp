// ldm::version: the headers' version agrees with the CMake project's and is well formed.
#include <doctest/doctest.h>

#include <ldm/version.hpp>
#include <string>

TEST_CASE("ldm::version is the CMake project version, as numbers and as text") {
  CHECK(std::string(ldm::version.string) == LDM_CMAKE_PROJECT_VERSION);
  CHECK(std::string(ldm::version.string) == std::to_string(ldm::version.major) + "." +
                                                std::to_string(ldm::version.minor) + "." +
                                                std::to_string(ldm::version.patch));
  static_assert(ldm::version.major == LDM_VERSION_MAJOR &&
                ldm::version.minor == LDM_VERSION_MINOR && ldm::version.patch == LDM_VERSION_PATCH);
}
