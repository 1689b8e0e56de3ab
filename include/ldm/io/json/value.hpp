#pragma once
/// @file
/// ldm::io::Json, a JSON value: what safetensors headers, diffusers' config files and the image
/// folder cache hold. Include ldm/io/json.hpp, which also defines its reader and writer.
///
/// Numbers keep the kind they were written or read as (signed, unsigned or floating): a count or
/// an offset must be a whole number, and a file's 2**64 - 1 must not become a double. Objects
/// keep their keys sorted, so a file ldm writes does not depend on the order of its code.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ldm/core/error.hpp"

namespace ldm::io {

class Json;

/// The ldm::Error Json::parse throws for text that is not JSON (not for what a JsonListener
/// throws), so that a caller can tell the two apart.
class JsonError : public Error {
 public:
  using Error::Error;
};

/// What Json::parse reports to its listener while it reads, before the value is complete.
enum class JsonEvent {
  object_start,  ///< A '{'; `depth` is the number of arrays and objects around it.
  array_start,   ///< A '['; `depth` as for object_start.
  key,           ///< An object's key, in the order of the text.
  object_end     ///< A '}'.
};

/// Called by Json::parse for each JsonEvent: what a reader of untrusted text checks as it goes
/// (nesting, repeated keys). It throws to refuse the text.
/// @param depth arrays and objects around the event
/// @param key the key, for JsonEvent::key; empty otherwise
using JsonListener = std::function<void(JsonEvent event, int depth, const std::string& key)>;

/// A JSON value (RFC 8259): null, a boolean, a number (signed, unsigned or floating), a string,
/// an array or an object. Built like a literal: `Json{{"a", 1}, {"b", {1, 2}}}` is an object (a
/// list whose items are all [string, value] pairs), `Json{1, 2}` an array.
class Json {
 public:
  using Array = std::vector<Json>;                          ///< An array's items.
  using Object = std::map<std::string, Json, std::less<>>;  ///< An object's fields, by key.

  /// null.
  Json() = default;
  /// null.
  Json(std::nullptr_t) {}
  /// true or false.
  Json(bool b) : value_(b) {}
  /// A signed or unsigned whole number.
  template <class I>
  requires std::is_integral_v<I> &&(!std::is_same_v<I, bool>)Json(I n) {
    if constexpr (std::is_signed_v<I>)
      value_ = std::int64_t(n);
    else
      value_ = std::uint64_t(n);
  }
  /// A floating-point number.
  Json(double x) : value_(x) {}
  /// A string (UTF-8).
  Json(std::string s) : value_(std::move(s)) {}
  /// A string (UTF-8).
  Json(std::string_view s) : value_(std::string(s)) {}
  /// A string (UTF-8).
  Json(const char* s) : value_(std::string(s)) {}
  /// An array of the items.
  template <class T>
  Json(const std::vector<T>& items) : value_(Array(items.begin(), items.end())) {}
  /// An array of the items.
  template <class T, std::size_t N>
  Json(const std::array<T, N>& items) : value_(Array(items.begin(), items.end())) {}
  /// An object of the fields.
  template <class T, class Less>
  Json(const std::map<std::string, T, Less>& fields)
      : value_(Object(fields.begin(), fields.end())) {}
  /// An object when every item is a [string, value] pair (the pairs' order does not matter; a
  /// repeated key keeps its first value), else an array of the items.
  Json(std::initializer_list<Json> items) {
    for (const Json& item : items)
      if (!item.is_pair()) {
        value_ = Array(items);
        return;
      }
    Object fields;
    for (const Json& item : items)
      fields.emplace(item.at(0).get<std::string>(), item.at(1));
    value_ = std::move(fields);
  }

  /// An array of the items, even where they all are [string, value] pairs.
  static Json array(std::initializer_list<Json> items = {}) {
    Json j;
    j.value_ = Array(items);
    return j;
  }
  /// An object of the [string, value] pairs.
  /// @throws ldm::Error when an item is not such a pair
  static Json object(std::initializer_list<Json> pairs = {}) {
    Json j;
    j.value_ = Object();
    for (const Json& pair : pairs) {
      if (!pair.is_pair()) fail_expected("JSON object", "[key, value] pairs", pair.dump());
      j[pair.at(0).get<std::string>()] = pair.at(1);
    }
    return j;
  }

  /// The value `text` holds: exactly one JSON value, with whitespace around it.
  /// @param listen if set, told of each JsonEvent as it is read
  /// @throws ldm::io::JsonError (an ldm::Error) naming the byte offset and what was expected there,
  /// when the text is not
  ///         JSON, holds invalid UTF-8, a number out of a double's range, or nests more than
  ///         kMaxDepth deep; or whatever `listen` throws
  static Json parse(std::string_view text, const JsonListener& listen = {});
  /// The deepest nesting of arrays and objects parse() reads.
  static constexpr int kMaxDepth = 512;

  /// The text of this value: on one line when indent < 0, else one item per line, each level
  /// indented by `indent` spaces more. Doubles take their shortest exact form (1.0, 0.00085,
  /// 1e-05); NaN and infinities, which JSON lacks, are written null.
  /// @throws ldm::Error when a string is not UTF-8
  std::string dump(int indent = -1) const;

  /// @{
  /// Whether the value is of that kind. A whole number is both number_integer and number, and
  /// number_unsigned too when read or made without a sign.
  bool is_null() const { return holds<std::nullptr_t>(); }
  bool is_boolean() const { return holds<bool>(); }
  bool is_number_unsigned() const { return holds<std::uint64_t>(); }
  bool is_number_integer() const { return holds<std::int64_t>() || is_number_unsigned(); }
  bool is_number_float() const { return holds<double>(); }
  bool is_number() const { return is_number_integer() || is_number_float(); }
  bool is_string() const { return holds<std::string>(); }
  bool is_array() const { return holds<Array>(); }
  bool is_object() const { return holds<Object>(); }
  /// @}

  /// "null", "boolean", "number", "string", "array" or "object", for messages.
  const char* type_name() const {
    constexpr const char* names[] = {"null",   "boolean", "number", "number",
                                     "number", "string",  "array",  "object"};
    return names[value_.index()];
  }

  /// The value as a T: bool, a number type, std::string, std::vector of those, or Json. Numbers
  /// convert to any number type as static_cast does.
  /// @throws ldm::Error when the value is not of that kind
  template <class T>
  T get() const {
    if constexpr (std::is_same_v<T, Json>) {
      return *this;
    } else if constexpr (std::is_same_v<T, bool>) {
      return as<bool>("a boolean");
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (const auto* i = std::get_if<std::int64_t>(&value_)) return static_cast<T>(*i);
      if (const auto* u = std::get_if<std::uint64_t>(&value_)) return static_cast<T>(*u);
      return static_cast<T>(as<double>("a number"));
    } else if constexpr (std::is_same_v<T, std::string>) {
      return as<std::string>("a string");
    } else {
      T items;
      for (const Json& item : as<Array>("an array"))
        items.push_back(item.get<typename T::value_type>());
      return items;
    }
  }

  /// The object's value for `key`.
  /// @throws ldm::Error when this is not an object or has no such key
  const Json& at(std::string_view key) const {
    const Object& fields = as<Object>("an object");
    const auto it = fields.find(key);
    if (it == fields.end()) fail("JSON object: no key '", key, "'");
    return it->second;
  }
  /// @copydoc at(std::string_view) const
  Json& at(std::string_view key) { return const_cast<Json&>(std::as_const(*this).at(key)); }
  /// The array's item at `index`.
  /// @throws ldm::Error when this is not an array or is too short
  const Json& at(std::size_t index) const {
    const Array& items = as<Array>("an array");
    if (index >= items.size()) fail("JSON array: no index ", index, " in ", items.size(), " items");
    return items[index];
  }
  /// @copydoc at(std::size_t) const
  Json& at(std::size_t index) { return const_cast<Json&>(std::as_const(*this).at(index)); }
  /// @copydoc at(std::string_view) const
  const Json& operator[](std::string_view key) const { return at(key); }
  /// @copydoc at(std::size_t) const
  const Json& operator[](std::size_t index) const { return at(index); }
  /// The object's value for `key`, null and added if missing; null becomes an empty object first.
  /// @throws ldm::Error when this is neither an object nor null
  Json& operator[](std::string_view key) {
    Object& fields = make<Object>("an object");
    auto it = fields.find(key);
    if (it == fields.end()) it = fields.emplace(std::string(key), Json()).first;
    return it->second;
  }
  /// @copydoc at(std::size_t) const
  Json& operator[](std::size_t index) { return at(index); }

  /// The object's value for `key`, or nullptr when it has none or this is not an object.
  const Json* find(std::string_view key) const {
    const auto* fields = std::get_if<Object>(&value_);
    if (!fields) return nullptr;
    const auto it = fields->find(key);
    return it == fields->end() ? nullptr : &it->second;
  }
  /// Whether this is an object with `key`.
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  /// The object's value for `key` as a T, or `fallback` where it has none.
  /// @throws ldm::Error as get<T>() for a value of another kind
  template <class T>
  T value(std::string_view key, const T& fallback) const {
    const Json* found = find(key);
    return found ? found->get<T>() : fallback;
  }

  /// The object's fields, by key (for `const auto& [key, value] : json.items()`).
  /// @throws ldm::Error when this is not an object
  const Object& items() const { return as<Object>("an object"); }
  /// @copydoc items() const
  Object& items() { return const_cast<Object&>(std::as_const(*this).items()); }
  /// Sets every field of `other` here, replacing those with the same keys.
  /// @throws ldm::Error when either is not an object (null here becomes one)
  void update(const Json& other) {
    Object& fields = make<Object>("an object");
    for (const auto& [key, value] : other.items())
      fields.insert_or_assign(key, value);
  }

  /// @{
  /// The array's items (for range-for).
  /// @throws ldm::Error when this is not an array
  Array::const_iterator begin() const { return as<Array>("an array").begin(); }
  Array::const_iterator end() const { return as<Array>("an array").end(); }
  Array::iterator begin() {
    return const_cast<Array&>(std::as_const(*this).as<Array>("an array")).begin();
  }
  Array::iterator end() {
    return const_cast<Array&>(std::as_const(*this).as<Array>("an array")).end();
  }
  /// @}
  /// Appends `item`; null becomes an empty array first.
  /// @throws ldm::Error when this is neither an array nor null
  void push_back(Json item) { make<Array>("an array").push_back(std::move(item)); }

  /// The items of an array or fields of an object; 0 for null, 1 for any other value.
  std::size_t size() const {
    if (const auto* items = std::get_if<Array>(&value_)) return items->size();
    if (const auto* fields = std::get_if<Object>(&value_)) return fields->size();
    return is_null() ? 0 : 1;
  }
  /// Whether size() is 0.
  bool empty() const { return size() == 0; }

  /// Equal kinds and values. Numbers compare by value whatever their kind (1 == 1.0); a negative
  /// signed number equals no unsigned one.
  friend bool operator==(const Json& a, const Json& b) {
    if (a.is_number() && b.is_number()) {
      if (a.is_number_float() || b.is_number_float()) return a.get<double>() == b.get<double>();
      const auto* sa = std::get_if<std::int64_t>(&a.value_);
      const auto* sb = std::get_if<std::int64_t>(&b.value_);
      if (sa && sb) return *sa == *sb;
      if (!sa && !sb) return a.get<std::uint64_t>() == b.get<std::uint64_t>();
      const std::int64_t s = sa ? *sa : *sb;
      return s >= 0 && std::uint64_t(s) == (sa ? b : a).get<std::uint64_t>();
    }
    return a.value_ == b.value_;
  }

  /// The stored value: index 0 null, 1 bool, 2 signed, 3 unsigned, 4 double, 5 string, 6 array,
  /// 7 object (the writer dispatches on it).
  using Variant = std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double,
                               std::string, Array, Object>;
  /// @copydoc Variant
  const Variant& variant() const { return value_; }

 private:
  template <class T>
  bool holds() const {
    return std::holds_alternative<T>(value_);
  }
  template <class T>
  const T& as(const char* expected) const {
    const T* v = std::get_if<T>(&value_);
    if (!v) fail_expected("JSON value", expected, type_name());
    return *v;
  }
  // The value as a T, which null first becomes.
  template <class T>
  T& make(const char* expected) {
    if (is_null()) value_ = T();
    return const_cast<T&>(std::as_const(*this).as<T>(expected));
  }
  bool is_pair() const {
    const auto* items = std::get_if<Array>(&value_);
    return items && items->size() == 2 && (*items)[0].is_string();
  }

  Variant value_;
};

}  // namespace ldm::io
