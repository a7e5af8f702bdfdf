// Unit tests for JsonWriter, json_quote and the small helpers in common.hpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common.hpp"
#include "json.hpp"

using pgml::JsonWriter;

TEST(JsonWriter, EmptyContainers)
{
	JsonWriter a;
	a.begin_object().end_object();
	EXPECT_EQ(a.str(), "{}");
	JsonWriter b;
	b.begin_array().end_array();
	EXPECT_EQ(b.str(), "[]");
}

TEST(JsonWriter, ObjectWithScalars)
{
	JsonWriter w;
	w.begin_object();
	w.key("r2").value(0.5);
	w.key("rows").value(42);
	w.key("big").value(1234567890123LL);
	w.key("ok").value(true);
	w.key("bad").value(false);
	w.key("name").value("iris");
	w.key("s").value(std::string("x"));
	w.key("nothing").null();
	w.end_object();
	EXPECT_EQ(w.str(), "{\"r2\":0.5,\"rows\":42,\"big\":1234567890123,\"ok\":true,\"bad\":false,"
	                   "\"name\":\"iris\",\"s\":\"x\",\"nothing\":null}");
}

TEST(JsonWriter, NestedContainersAndCommas)
{
	JsonWriter w;
	w.begin_object();
	w.key("a").begin_array().value(1).value(2).begin_array().end_array().begin_object().end_object().end_array();
	w.key("b").begin_object().key("c").begin_array().value(-3).end_array().end_object();
	w.key("d").value(0);
	w.end_object();
	EXPECT_EQ(w.str(), "{\"a\":[1,2,[],{}],\"b\":{\"c\":[-3]},\"d\":0}");
}

TEST(JsonWriter, TopLevelArrayOfArrays)
{
	JsonWriter w;
	w.begin_array();
	for (int r = 0; r < 2; ++r) {
		w.begin_array();
		for (int c = 0; c < 3; ++c)
			w.value(r * 3 + c);
		w.end_array();
	}
	w.end_array();
	EXPECT_EQ(w.str(), "[[0,1,2],[3,4,5]]");
}

TEST(JsonWriter, NonFiniteDoublesAreNull)
{
	JsonWriter w;
	w.begin_array();
	w.value(std::numeric_limits<double>::quiet_NaN());
	w.value(std::numeric_limits<double>::infinity());
	w.value(-std::numeric_limits<double>::infinity());
	w.end_array();
	EXPECT_EQ(w.str(), "[null,null,null]");
}

TEST(JsonWriter, DoublesRoundTrip)
{
	JsonWriter w;
	w.begin_array().value(0.1).value(-2.5).value(1e-300).value(100.0).end_array();
	EXPECT_EQ(w.str(), "[0.1,-2.5,1e-300,100]");

	const double values[] = {1.0 / 3.0, 2.0 / 3.0, 0.1 + 0.2, 6.02214076e23, -1.7976931348623157e308,
	                         4.9406564584124654e-324, 0.9486081370449679};
	for (double v : values) {
		JsonWriter one;
		one.value(v);
		EXPECT_EQ(std::strtod(one.str().c_str(), nullptr), v) << one.str();
	}
}

TEST(JsonWriter, RawValues)
{
	JsonWriter w;
	w.begin_object();
	w.key("inner").raw("{\"x\":1}");
	w.key("list").begin_array().raw("true").raw("[1,2]").end_array();
	w.end_object();
	EXPECT_EQ(w.str(), "{\"inner\":{\"x\":1},\"list\":[true,[1,2]]}");
}

TEST(JsonWriter, KeysAreEscaped)
{
	JsonWriter w;
	w.begin_object().key("a\"b").value(1).end_object();
	EXPECT_EQ(w.str(), "{\"a\\\"b\":1}");
}

TEST(JsonQuote, Escapes)
{
	EXPECT_EQ(pgml::json_quote(""), "\"\"");
	EXPECT_EQ(pgml::json_quote("plain"), "\"plain\"");
	EXPECT_EQ(pgml::json_quote("q\"b\\"), "\"q\\\"b\\\\\"");
	EXPECT_EQ(pgml::json_quote("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
	EXPECT_EQ(pgml::json_quote(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
	EXPECT_EQ(pgml::json_quote(std::string("a\0b", 3)), "\"a\\u0000b\"");
	// UTF-8 passes through untouched
	EXPECT_EQ(pgml::json_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(OptionValue, ToJson)
{
	EXPECT_EQ(pgml::OptionValue::of_number(1.5).to_json(), "1.5");
	EXPECT_EQ(pgml::OptionValue::of_string("mean").to_json(), "\"mean\"");
	EXPECT_EQ(pgml::OptionValue::of_bool(true).to_json(), "true");
	EXPECT_EQ(pgml::OptionValue().to_json(), "null");
}

TEST(TaskName, Names)
{
	EXPECT_STREQ(pgml::task_name(pgml::Task::Regression), "regression");
	EXPECT_STREQ(pgml::task_name(pgml::Task::Classification), "classification");
	EXPECT_STREQ(pgml::task_name(pgml::Task::Clustering), "clustering");
}
