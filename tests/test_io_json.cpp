// ldm's JSON (ldm/io/json.hpp): the text it writes, byte for byte as ldm's files always had it;
// numbers keeping their kind at the limits of int64 and uint64; every escape; malformed text
// refused with the byte offset; the nesting limit; and the listener the safetensors reader uses to
// refuse repeated keys.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ldm/io/json.hpp"
#include "support/errors.hpp"

using ldm::io::Json;
using ldm::io::JsonEvent;
using ldm::test::check_message;
using ldm::test::error_of;

TEST_CASE("doubles are written in their shortest form, placed as ldm's files always had them") {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {100.0, "100.0"},
      {-2.5, "-2.5"},
      {0.1, "0.1"},
      {0.012, "0.012"},
      {0.18215, "0.18215"},
      {0.00085, "0.00085"},
      {0.0001, "0.0001"},
      {0.0001234, "0.0001234"},
      {1e-5, "1e-05"},
      {1e-7, "1e-07"},
      {double(1e-5f), "9.999999747378752e-06"},
      {1.0 / 3, "0.3333333333333333"},
      {123456789012345.0, "123456789012345.0"},
      {1e15, "1e+15"},
      {1234567890123456.0, "1.234567890123456e+15"},
      {1.5e20, "1.5e+20"},
      {1e21, "1e+21"},
      {1e300, "1e+300"},
      {1e-300, "1e-300"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {std::numeric_limits<double>::quiet_NaN(), "null"},
      {-std::numeric_limits<double>::infinity(), "null"},
  };
  for (const auto& [x, text] : cases) {
    CAPTURE(text);
    CHECK(Json(x).dump() == text);
    if (std::isfinite(x)) {
      const Json read = Json::parse(text);
      CHECK(read.is_number_float());
      CHECK(read.get<double>() == x);
      CHECK(std::signbit(read.get<double>()) == std::signbit(x));
    }
  }
}

TEST_CASE("whole numbers keep their kind: signed, unsigned, or a double past 64 bits") {
  constexpr auto int_min = std::numeric_limits<std::int64_t>::min();
  constexpr auto int_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto uint_max = std::numeric_limits<std::uint64_t>::max();
  CHECK(Json(int_min).dump() == "-9223372036854775808");
  CHECK(Json(int_max).dump() == "9223372036854775807");
  CHECK(Json(uint_max).dump() == "18446744073709551615");
  CHECK(Json(-1).dump() == "-1");

  const Json big = Json::parse("18446744073709551615");
  CHECK(big.is_number_unsigned());
  CHECK(big.is_number_integer());
  CHECK(big.get<std::uint64_t>() == uint_max);
  const Json low = Json::parse("-9223372036854775808");
  CHECK(low.is_number_integer());
  CHECK_FALSE(low.is_number_unsigned());
  CHECK(low.get<std::int64_t>() == int_min);
  CHECK(Json::parse("7").is_number_unsigned());
  CHECK(Json(7).is_number_integer());
  CHECK_FALSE(Json(7).is_number_unsigned());
  CHECK(Json(7u).is_number_unsigned());

  for (const char* past : {"18446744073709551616", "-9223372036854775809"}) {
    const Json x = Json::parse(past);
    CHECK(x.is_number_float());
    CHECK(x.get<double>() == std::stod(past));
  }
  CHECK(Json::parse("18446744073709551616").dump() == "1.8446744073709552e+19");

  const Json zero = Json::parse("-0");  // a whole number: the sign of a zero integer is lost
  CHECK(zero.is_number_integer());
  CHECK(zero.get<std::int64_t>() == 0);
  const Json negative_zero = Json::parse("-0.0");
  CHECK(negative_zero.is_number_float());
  CHECK(std::signbit(negative_zero.get<double>()));
  CHECK(Json::parse("1E2").get<double>() == 100);
  CHECK(Json::parse("1e+2").is_number_float());
  CHECK(Json::parse("-2.5e-3").get<double>() == -2.5e-3);
  CHECK(Json::parse("0.1").get<double>() == 0.1);
  CHECK(Json::parse("1e300").get<double>() == 1e300);
}

TEST_CASE("numbers compare by value whatever their kind") {
  CHECK(Json(1) == Json(1.0));
  CHECK(Json(1u) == Json(1));
  CHECK(Json(-1) != Json(std::numeric_limits<std::uint64_t>::max()));
  CHECK(Json::array({32, 64}) == Json::parse("[32.0, 64]"));
  CHECK(Json(1) != Json("1"));
  CHECK(Json(true) != Json(1));
  CHECK(Json() == Json(nullptr));
  CHECK(Json("-Infinity") == "-Infinity");
}

TEST_CASE("every escape is read, and strings are written with the escapes ldm's files had") {
  const Json read =
      Json::parse(R"("\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC \ud834\udd1e \u0000")");
  CHECK(read.get<std::string>() ==
        std::string("\" \\ / \b \f \n \r \t A \xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E ") + '\0');

  std::string all;
  for (int c = 1; c < 0x20; ++c)
    all += char(c);
  all += "\"\\/\x7F\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E";
  const std::string written =
      R"("\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010)"
      R"(\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e)"
      "\\u001f\\\"\\\\/\x7F\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\"";
  CHECK(Json(all).dump() == written);
  CHECK(Json::parse(written).get<std::string>() == all);
  CHECK(Json(std::string(1, '\0')).dump() == R"("\u0000")");

  check_message(error_of([] { (void)Json("\xC3").dump(); }), {"JSON string", "UTF-8"});
  CHECK(ldm::io::detail::is_utf8("\xF4\x8F\xBF\xBF"));
  for (const char* bad :
       {"\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xFF"}) {
    CAPTURE(bad);
    CHECK_FALSE(ldm::io::detail::is_utf8(bad));
  }
}

TEST_CASE("dump writes one line, or one item per line indented, as ldm's files always were") {
  const Json doc = Json::parse(R"({"b": [1, {"c": []}, {}], "a": null, "d": "x"})");
  CHECK(doc.dump() == R"({"a":null,"b":[1,{"c":[]},{}],"d":"x"})");
  CHECK(doc.dump(2) ==
        "{\n"
        "  \"a\": null,\n"
        "  \"b\": [\n"
        "    1,\n"
        "    {\n"
        "      \"c\": []\n"
        "    },\n"
        "    {}\n"
        "  ],\n"
        "  \"d\": \"x\"\n"
        "}");
  CHECK(Json::parse(doc.dump(2)) == doc);
  CHECK(Json::parse(doc.dump()) == doc);
  CHECK(Json::object().dump(4) == "{}");
  CHECK(Json(true).dump(2) == "true");
}

TEST_CASE("a literal's [string, value] pairs make an object; anything else an array") {
  const Json object{{"b", 1}, {"a", {1, 2}}, {"c", nullptr}, {"b", 2}};
  CHECK(object.is_object());
  CHECK(object.dump() == R"({"a":[1,2],"b":1,"c":null})");  // a repeated key keeps its first
  CHECK(Json{1, "a"}.is_array());
  CHECK(Json{"a", "b"}.dump() == R"(["a","b"])");
  CHECK(Json::array({{"a", 1}}).dump() == R"([["a",1]])");
  CHECK(Json::object({{"a", 1}}).dump() == R"({"a":1})");
  check_message(error_of([] { (void)Json::object({1}); }), {"[key, value] pairs", "1"});
  CHECK(Json(std::vector<std::int64_t>{2, 3}).dump() == "[2,3]");
  CHECK(Json(std::map<std::string, std::string>{{"k", "v"}}).dump() == R"({"k":"v"})");
}

TEST_CASE("values are read, changed and refused by name") {
  Json config;
  config["x"] = 1;
  config["y"]["z"] = "deep";
  config.update(Json{{"x", 2.5}, {"w", true}});
  CHECK(config.dump() == R"({"w":true,"x":2.5,"y":{"z":"deep"}})");
  CHECK(config.value("x", 0.0) == 2.5);
  CHECK(config.value("missing", std::string("fallback")) == "fallback");
  CHECK(config.find("missing") == nullptr);
  CHECK(config.contains("y"));
  CHECK(config.size() == 3);
  CHECK(Json().empty());

  Json list;
  list.push_back(1);
  list.push_back("two");
  CHECK(list.size() == 2);
  CHECK(list.at(1).get<std::string>() == "two");
  CHECK(Json::parse("[1.5, 2]").get<std::vector<double>>() == std::vector<double>{1.5, 2});

  check_message(error_of([&] { (void)config.at("missing"); }), {"no key 'missing'"});
  check_message(error_of([&] { (void)list.at(2); }), {"no index 2 in 2 items"});
  check_message(error_of([&] { (void)list.at(0).get<std::string>(); }),
                {"expected a string, found number"});
  check_message(error_of([&] { (void)config.at("w").get<double>(); }),
                {"expected a number, found boolean"});
  check_message(error_of([&] { list["key"] = 1; }), {"expected an object, found array"});
  check_message(error_of([&] { (void)config.items().size(), (void)list.items(); }),
                {"expected an object, found array"});
}

TEST_CASE("malformed text is refused, naming the byte offset and what was expected there") {
  struct Case {
    std::string text;
    std::size_t offset;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", 0, "a value"},
      {"  ", 2, "a value"},
      {"{", 1, "a string key"},
      {"{\"a\" 1}", 5, "':' after the key"},
      {"{\"a\":1,}", 7, "a string key"},
      {"{\"a\":1 \"b\":2}", 7, "',' or '}'"},
      {"[1,]", 3, "a value"},
      {"[1 2]", 3, "',' or ']'"},
      {"[1]]", 3, "the end of the text"},
      {"{} x", 3, "the end of the text"},
      {"01", 1, "the end of the text"},
      {"tru", 0, "true, false or null"},
      {"NaN", 0, "a value"},
      {"-", 1, "a digit"},
      {"1.", 2, "a digit"},
      {"1e", 2, "a digit"},
      {"+1", 0, "a value"},
      {"1e400", 0, "a number within a double's range"},
      {"\"abc", 4, "'\"' closing the string"},
      {"\"a\nb\"", 2, "control characters must be escaped"},
      {"\"\\x\"", 2, "an escape"},
      {"\"\\u12G4\"", 5, "a hex digit"},
      {"\"\\udc00\"", 1, "not a lone low surrogate"},
      {"\"\\ud800\"", 7, "a low surrogate after a high one"},
      {"\"\\ud800\\u0041\"", 7, "a low surrogate after a high one"},
      {"\"\xFF\"", 1, "valid UTF-8"},
      {"\"\xC0\xAF\"", 1, "valid UTF-8"},
      {"\"\xED\xA0\x80\"", 1, "valid UTF-8"},
      {"[1, /* no */ 2]", 4, "a value"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const std::string message = error_of([&] { (void)Json::parse(c.text); });
    check_message(message,
                  {"JSON at byte offset " + std::to_string(c.offset) + ": expected", c.expected});
    CHECK_THROWS_AS((void)Json::parse(c.text), ldm::io::JsonError);
  }
  // What was found is shown safely: one printable character or the byte's value.
  check_message(error_of([] { (void)Json::parse("\x01"); }), {"found byte 0x01"});
  check_message(error_of([] { (void)Json::parse("x"); }), {"found 'x'"});
  check_message(error_of([] { (void)Json::parse("["); }), {"found the end of the text"});
}

TEST_CASE("nesting deeper than kMaxDepth is refused, without exhausting the stack") {
  const auto nested = [](int depth) {
    return std::string(std::size_t(depth), '[') + std::string(std::size_t(depth), ']');
  };
  CHECK(Json::parse(nested(Json::kMaxDepth)).is_array());
  check_message(error_of([&] { (void)Json::parse(nested(Json::kMaxDepth + 1)); }),
                {"byte offset 512", "nested at most 512 deep"});
  check_message(error_of([] { (void)Json::parse(std::string(1'000'000, '[')); }),
                {"nested at most 512 deep"});
  std::string objects;
  for (int i = 0; i <= Json::kMaxDepth; ++i)
    objects += "{\"a\":";
  check_message(error_of([&] { (void)Json::parse(objects); }), {"nested at most 512 deep"});
}

TEST_CASE("the listener sees each key in order and can refuse repeats, which parse alone keeps") {
  CHECK(Json::parse(R"({"a": 1, "a": 2})").dump() == R"({"a":2})");

  std::vector<std::string> seen;
  const auto record = [&](JsonEvent event, int depth, const std::string& key) {
    const char* names[] = {"{", "[", "key ", "}"};
    seen.push_back(names[int(event)] + key + "@" + std::to_string(depth));
  };
  (void)Json::parse(R"({"b": [{"c": 1}], "a": {}})", record);
  CHECK(seen == std::vector<std::string>{"{@0", "key b@1", "[@1", "{@2", "key c@3", "}@2",
                                         "key a@1", "{@1", "}@1", "}@0"});

  struct Repeated : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  std::vector<std::string> keys;
  const auto unique = [&](JsonEvent event, int, const std::string& key) {
    if (event != JsonEvent::key) return;
    for (const std::string& k : keys)
      if (k == key) throw Repeated(key);
    keys.push_back(key);
  };
  // The listener's exception passes through as it is, not as a JsonError.
  CHECK_THROWS_AS((void)Json::parse(R"({"a": 1, "b": 2, "a": 3})", unique), Repeated);
}
