#pragma once
/// @file
/// ldm's JSON: the Json value (json/value.hpp), its reader (json/parse.hpp) and writer
/// (json/write.hpp). ldm has its own rather than a library's because every unit that includes
/// ldm parses it: a general JSON library cost as much compiler time and memory as half of ldm.

#include <string>
#include <string_view>

#include "ldm/io/json/parse.hpp"
#include "ldm/io/json/value.hpp"
#include "ldm/io/json/write.hpp"

namespace ldm::io {

inline Json Json::parse(std::string_view text, const JsonListener& listen) {
  return detail::JsonParser(text, listen).parse();
}

inline std::string Json::dump(int indent) const {
  std::string out;
  detail::write_json(out, *this, indent, 0);
  return out;
}

}  // namespace ldm::io
