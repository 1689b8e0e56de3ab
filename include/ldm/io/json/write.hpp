#pragma once
/// @file
/// JSON text from a Json value (Json::dump), and the UTF-8 check that the reader shares. The form
/// is that of the files ldm wrote before it had its own JSON (with a JSON library's dump), so
/// that headers and configs stay byte for byte the same: no spaces on one line; ": " and one item
/// per line when indented.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ldm/io/json/value.hpp"

namespace ldm::io::detail {

/// The length of the UTF-8 sequence that starts `text` (1 to 4 bytes), or 0 when it starts with
/// none (a stray continuation byte, an overlong form, a surrogate, a code point past U+10FFFF, or
/// a sequence cut short).
inline std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return std::uint8_t(text[i]); };
  const std::uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length;
  std::uint8_t low = 0x80, high = 0xBF;  // the second byte's range, which rules out bad forms
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}

/// Whether `text` is valid UTF-8 (which JSON text must be).
inline bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

/// Appends `text` quoted: '"' and '\\' escaped, control characters as \b \f \n \r \t or \u00xx,
/// everything else (including '/' and non-ASCII UTF-8) as it is.
/// @throws ldm::Error when `text` is not UTF-8
inline void write_json_string(std::string& out, std::string_view text) {
  if (!is_utf8(text)) fail_expected("JSON string", "UTF-8 text", "invalid UTF-8");
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (std::uint8_t(c) < 0x20) {
          constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[std::uint8_t(c) >> 4];
          out += hex[std::uint8_t(c) & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

/// Appends the shortest digits that read back as `x`, placed as ldm's files always had them:
/// plain when the decimal point falls within 15 digits of the first ("1.0" for whole numbers,
/// "0.00085" down to 4 zeros after the point), else in exponent form with a signed exponent of at
/// least two digits ("1e-05", "1.5e+300"). NaN and infinities are null.
inline void write_json_double(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  if (std::signbit(x)) out += '-';
  char buffer[32];
  const auto end =
      std::to_chars(buffer, buffer + sizeof buffer, std::fabs(x), std::chars_format::scientific)
          .ptr;
  // buffer holds d[.ddd]e±xx: the digits, and the exponent of the first digit.
  const std::string_view text(buffer, std::size_t(end - buffer));
  const std::size_t e = text.find('e');
  std::string digits(1, text[0]);
  if (e > 1) digits += text.substr(2, e - 2);
  int exponent = 0;  // from_chars takes '-' but not '+'
  std::from_chars(buffer + e + (text[e + 1] == '+' ? 2 : 1), end, exponent);
  const int count = int(digits.size()), point = exponent + 1;  // digits before the point
  constexpr int kMaxPoint = 15, kMinPoint = -4;
  if (count <= point && point <= kMaxPoint) {
    out += digits;
    out.append(std::size_t(point - count), '0');
    out += ".0";
  } else if (0 < point && point <= kMaxPoint) {
    out += digits.substr(0, std::size_t(point));
    out += '.';
    out += digits.substr(std::size_t(point));
  } else if (kMinPoint < point && point <= 0) {
    out += "0.";
    out.append(std::size_t(-point), '0');
    out += digits;
  } else {
    out += digits[0];
    if (count > 1) out += '.' + digits.substr(1);
    out += exponent < 0 ? "e-" : "e+";
    const int magnitude = std::abs(exponent);
    if (magnitude < 10) out += '0';
    out += std::to_string(magnitude);
  }
}

/// Appends `value` at nesting `level` (see Json::dump).
inline void write_json(std::string& out, const Json& value, int indent, int level) {
  const auto& v = value.variant();
  const auto newline = [&](int at) {
    if (indent < 0) return;
    out += '\n';
    out.append(std::size_t(indent) * std::size_t(at), ' ');
  };
  char number[24];
  switch (v.index()) {
    case 0:
      out += "null";
      return;
    case 1:
      out += std::get<bool>(v) ? "true" : "false";
      return;
    case 2:
      out.append(number, std::to_chars(number, number + 24, std::get<std::int64_t>(v)).ptr);
      return;
    case 3:
      out.append(number, std::to_chars(number, number + 24, std::get<std::uint64_t>(v)).ptr);
      return;
    case 4:
      write_json_double(out, std::get<double>(v));
      return;
    case 5:
      write_json_string(out, std::get<std::string>(v));
      return;
    case 6: {
      const auto& items = std::get<Json::Array>(v);
      out += '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        write_json(out, items[i], indent, level + 1);
      }
      if (!items.empty()) newline(level);
      out += ']';
      return;
    }
    default: {
      const auto& fields = std::get<Json::Object>(v);
      out += '{';
      bool first = true;
      for (const auto& [key, field] : fields) {
        if (!first) out += ',';
        first = false;
        newline(level + 1);
        write_json_string(out, key);
        out += indent < 0 ? ":" : ": ";
        write_json(out, field, indent, level + 1);
      }
      if (!fields.empty()) newline(level);
      out += '}';
    }
  }
}

}  // namespace ldm::io::detail
