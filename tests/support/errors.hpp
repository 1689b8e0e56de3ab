#pragma once
// Checking ldm::Error messages in tests: what a call threw, and that the message names each part
// a user needs (the file, the field, the expected and the found value).

#include <doctest/doctest.h>

#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>

#include "ldm/core/error.hpp"

namespace ldm::test {

// The message of the ldm::Error that f() throws; any other outcome is described instead, so that
// a check on the message fails and says why.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("an exception other than ldm::Error: ") + e.what();
  }
  return "no exception";
}

inline void check_message(const std::string& message,
                          std::initializer_list<std::string_view> parts) {
  INFO("message: ", message);
  for (std::string_view part : parts)
    CHECK_MESSAGE(message.find(part) != std::string::npos, "missing: ", part);
}

}  // namespace ldm::test
