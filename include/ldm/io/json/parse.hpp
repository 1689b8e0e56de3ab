#pragma once
/// @file
/// The JSON reader behind Json::parse (RFC 8259, strictly: no comments, no trailing commas, no
/// NaN; UTF-8 only). Every refusal names the byte offset, what was expected there and what was
/// found, as safetensors headers are untrusted input.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "ldm/io/json/value.hpp"
#include "ldm/io/json/write.hpp"

namespace ldm::io::detail {

/// Reads one JSON text; see Json::parse.
class JsonParser {
 public:
  /// @param listen may be empty
  JsonParser(std::string_view text, const JsonListener& listen) : text_(text), listen_(listen) {}

  /// The value of the whole text.
  /// @throws ldm::Error as Json::parse
  Json parse() {
    skip_space();
    Json value = parse_value(0);
    skip_space();
    if (pos_ < text_.size()) refuse("the end of the text after the value");
    return value;
  }

 private:
  [[noreturn]] void refuse(std::string_view expected) const { refuse_at(pos_, expected); }
  [[noreturn]] void refuse_at(std::size_t at, std::string_view expected) const {
    std::string found = "the end of the text";
    if (at < text_.size()) {
      const auto c = std::uint8_t(text_[at]);
      constexpr char hex[] = "0123456789abcdef";
      found = c >= 0x20 && c < 0x7F ? "'" + std::string(1, char(c)) + "'"
                                    : std::string("byte 0x") + hex[c >> 4] + hex[c & 0xF];
    }
    throw JsonError("JSON at byte offset " + std::to_string(at) + ": expected " +
                    std::string(expected) + ", found " + found);
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }
  void expect(char c, std::string_view expected) {
    if (peek() != c || at_end()) refuse(expected);
    ++pos_;
  }
  void tell(JsonEvent event, int depth, const std::string& key = {}) const {
    if (listen_) listen_(event, depth, key);
  }

  Json parse_value(int depth) {
    switch (peek()) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return parse_string();
      case 't':
        return parse_literal("true", true);
      case 'f':
        return parse_literal("false", false);
      case 'n':
        return parse_literal("null", nullptr);
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        refuse("a value (object, array, string, number, true, false or null)");
    }
  }

  // Opens an array or object at `depth`, which must be below Json::kMaxDepth.
  void open(JsonEvent event, int depth) {
    if (depth >= Json::kMaxDepth)
      refuse("arrays and objects nested at most " + std::to_string(Json::kMaxDepth) + " deep");
    tell(event, depth);
    ++pos_;
    skip_space();
  }

  // The items of the array or object just opened: read_item() for each, separated by ',' up to
  // `close`.
  template <class ReadItem>
  void parse_items(char close, std::string_view separators, const ReadItem& read_item) {
    if (peek() == close && !at_end()) {
      ++pos_;
      return;
    }
    for (;;) {
      read_item();
      skip_space();
      if (peek() == close && !at_end()) break;
      expect(',', separators);
      skip_space();
    }
    ++pos_;
  }

  Json parse_object(int depth) {
    open(JsonEvent::object_start, depth);
    Json object = Json::object();
    parse_items('}', "',' or '}'", [&] {
      if (peek() != '"') refuse("a string key");
      std::string key = parse_string().get<std::string>();
      tell(JsonEvent::key, depth + 1, key);
      skip_space();
      expect(':', "':' after the key");
      skip_space();
      object[key] = parse_value(depth + 1);
    });
    tell(JsonEvent::object_end, depth);
    return object;
  }

  Json parse_array(int depth) {
    open(JsonEvent::array_start, depth);
    Json array = Json::array();
    parse_items(']', "',' or ']'", [&] { array.push_back(parse_value(depth + 1)); });
    return array;
  }

  Json parse_literal(std::string_view word, Json value) {
    if (text_.substr(pos_, word.size()) != word) refuse("a value (true, false or null)");
    pos_ += word.size();
    return value;
  }

  // Four hex digits after "\u".
  std::uint32_t parse_hex4() {
    std::uint32_t code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = peek();
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0 || at_end()) refuse("a hex digit in a \\u escape");
      code = code * 16 + std::uint32_t(digit);
    }
    return code;
  }

  static void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xC0 | (code >> 6));
      out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += char(0xE0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    } else {
      out += char(0xF0 | (code >> 18));
      out += char(0x80 | ((code >> 12) & 0x3F));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    }
  }

  // A \u escape (pos_ after the 'u'): one code point, a surrogate pair taking two escapes.
  std::uint32_t parse_unicode_escape() {
    const std::size_t start = pos_ - 2;
    const std::uint32_t code = parse_hex4();
    if (code >= 0xDC00 && code <= 0xDFFF)
      refuse_at(start, "a \\u escape that is not a lone low surrogate");
    if (code < 0xD800 || code > 0xDBFF) return code;
    if (text_.substr(pos_, 2) != "\\u") refuse("a \\u escape of a low surrogate after a high one");
    pos_ += 2;
    const std::uint32_t low = parse_hex4();
    if (low < 0xDC00 || low > 0xDFFF)
      refuse_at(pos_ - 6, "a \\u escape of a low surrogate after a high one");
    return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
  }

  Json parse_string() {
    ++pos_;  // the opening quote
    std::string out;
    for (;;) {
      if (at_end()) refuse("'\"' closing the string");
      const auto c = std::uint8_t(peek());
      if (c == '"') break;
      if (c < 0x20) refuse("a character of a string (control characters must be escaped)");
      if (c == '\\') {
        ++pos_;
        const char escape = peek();
        ++pos_;
        switch (escape) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u':
            append_utf8(out, parse_unicode_escape());
            break;
          default:
            refuse_at(pos_ - 1, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
        }
        continue;
      }
      const std::size_t length = utf8_sequence_length(text_.substr(pos_));
      if (length == 0) refuse("valid UTF-8");
      out += text_.substr(pos_, length);
      pos_ += length;
    }
    ++pos_;
    return Json(std::move(out));
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: whole numbers are signed when negative and
  // unsigned otherwise, or doubles when they overflow 64 bits; the others are doubles.
  Json parse_number() {
    const std::size_t start = pos_;
    const auto digits = [&] {
      const std::size_t first = pos_;
      while (peek() >= '0' && peek() <= '9' && !at_end())
        ++pos_;
      if (pos_ == first) refuse("a digit");
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else {
      digits();
    }
    bool whole = true;
    if (peek() == '.') {
      ++pos_;
      digits();
      whole = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits();
      whole = false;
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (whole) {
      if (*first == '-') {
        std::int64_t n;
        if (std::from_chars(first, last, n).ec == std::errc()) return Json(n);
      } else {
        std::uint64_t n;
        if (std::from_chars(first, last, n).ec == std::errc()) return Json(n);
      }
    }
    double x;
    if (std::from_chars(first, last, x).ec != std::errc())
      refuse_at(start, "a number within a double's range");
    return Json(x);
  }

  std::string_view text_;
  const JsonListener& listen_;
  std::size_t pos_ = 0;
};

}  // namespace ldm::io::detail
