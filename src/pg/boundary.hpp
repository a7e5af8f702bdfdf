// pg_ml glue: the single place where C++ exceptions become PostgreSQL errors.
//
//   PGML_CORE(statement...);
//
// runs the statements inside try/catch. Whatever the core throws (pgml::Error,
// std::bad_alloc from Eigen, anything else) is copied into a plain struct; only after
// the try block, and every C++ object in it, is gone does pgml_raise() call ereport().
// The statements must not call PostgreSQL functions that can raise an error.
#pragma once

#include <exception>
#include <new>

struct PgmlCoreError {
	int sqlstate;
	bool cancelled;
	char message[512];
	char detail[2048];
	char hint[512];
};

// Copies the exception in flight into err. Never throws.
void pgml_capture_exception(PgmlCoreError *err) noexcept;
// Raises err through ereport (or the pending cancel). Does not return.
void pgml_raise(const PgmlCoreError *err) pg_attribute_noreturn();
// The core's cancel poll: reads PostgreSQL's pending-interrupt flags, nothing else.
bool pgml_interrupt_pending();

template <typename F>
static inline bool
pgml_try(PgmlCoreError *err, F &&body) noexcept
{
	try {
		body();
		return true;
	} catch (...) {
		pgml_capture_exception(err);
		return false;
	}
}

#define PGML_CORE(...)                                                     \
	do {                                                                   \
		PgmlCoreError pgml_err_;                                           \
		if (!pgml_try(&pgml_err_, [&]() { __VA_ARGS__; }))                 \
			pgml_raise(&pgml_err_);                                        \
	} while (0)
