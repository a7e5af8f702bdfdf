// pg_ml core: shared vocabulary (errors, options, cancellation).
//
// Everything under src/core is plain C++17 + Eigen. It must never include a
// PostgreSQL header: core sources are compiled with PGML_CORE_SOURCE, and the guard
// below makes a PostgreSQL header seen before this one a compile error (the glue
// includes the core's headers before PostgreSQL's).
#pragma once

#if defined(POSTGRES_H) || defined(PG_CONFIG_H)
#error "src/core must not include PostgreSQL headers (and the glue includes core headers first)"
#endif

#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgml {

// What went wrong, in terms the glue maps to a SQLSTATE.
enum class ErrorCode {
	InvalidParameter,    // 22023 invalid_parameter_value
	DataException,       // 22000 data_exception
	NumericOutOfRange,   // 22003 numeric_value_out_of_range
	ProgramLimit,        // 54000 program_limit_exceeded
	DataCorrupted,       // XX001 data_corrupted
	FeatureNotSupported, // 0A000 feature_not_supported
	DatatypeMismatch,    // 42804 datatype_mismatch
	UndefinedColumn,     // 42703 undefined_column
	InvalidBinary,       // 22P03 invalid_binary_representation (bytes handed in by a user, e.g. ml_import)
	OutOfMemory,         // 53200 out_of_memory (an allocation failed: std::bad_alloc, xgboost's allocation errors)
	Cancelled,           // the cancel callback asked us to stop; the glue raises the real cancel
	Internal             // XX000: a bug
};

// The only exception type the core throws on purpose. message is the primary
// line (lowercase, no final period); detail and hint are full sentences or empty.
class Error : public std::runtime_error {
  public:
	Error(ErrorCode code, const std::string &message, std::string detail = {}, std::string hint = {})
		: std::runtime_error(message), code_(code), detail_(std::move(detail)), hint_(std::move(hint))
	{
	}
	ErrorCode code() const { return code_; }
	const std::string &detail() const { return detail_; }
	const std::string &hint() const { return hint_; }

  private:
	ErrorCode code_;
	std::string detail_;
	std::string hint_;
};

// Polled by long loops; returns true when the caller wants the work abandoned.
// The glue passes a function that only reads PostgreSQL's pending-interrupt flag.
using CancelCheck = bool (*)();

inline void check_cancel(CancelCheck cancel)
{
	if (cancel != nullptr && cancel())
		throw Error(ErrorCode::Cancelled, "canceled");
}

// Progress of a long fit, for the glue's progress reports. Called with a phase name ("evaluating")
// when a phase starts, or with phase == nullptr for an iteration (its number, a metric's name and
// value). The core calls it only on the thread that called into the core, never from a worker
// thread of parallel_for; the glue's function records the values (and may send a notice) and never throws.
using ProgressCallback = void (*)(const char *phase, int iteration, const char *metric, double value);

inline void report_iteration(ProgressCallback progress, int iteration, const char *metric, double value)
{
	if (progress != nullptr)
		progress(nullptr, iteration, metric, value);
}

inline void report_phase(ProgressCallback progress, const char *phase)
{
	if (progress != nullptr)
		progress(phase, 0, nullptr, NAN);
}

// A scalar option value from hyperparams / preprocess jsonb, flattened by the glue
// ("columns.age.impute" for nested keys).
struct OptionValue {
	enum class Type { Number, String, Bool, Null } type = Type::Null;
	double number = 0;
	std::string string;
	bool boolean = false;

	static OptionValue of_number(double v) { OptionValue o; o.type = Type::Number; o.number = v; return o; }
	static OptionValue of_string(std::string v) { OptionValue o; o.type = Type::String; o.string = std::move(v); return o; }
	static OptionValue of_bool(bool v) { OptionValue o; o.type = Type::Bool; o.boolean = v; return o; }
	std::string to_json() const;
};
using Options = std::map<std::string, OptionValue>;

enum class Task : uint8_t { Regression = 0, Classification = 1, Clustering = 2 };
const char *task_name(Task t);

} // namespace pgml
