// pg_ml glue: exception capture and conversion (see boundary.hpp).
#include "pg_ml.hpp"

#include <cstring>

extern "C" {
#include "utils/elog.h"
}

static void
copy_text(char *dst, size_t cap, const char *src) noexcept
{
	size_t n = std::strlen(src);
	if (n >= cap)
		n = cap - 1;
	std::memcpy(dst, src, n);
	dst[n] = '\0';
}

void
pgml_capture_exception(PgmlCoreError *err) noexcept
{
	err->cancelled = false;
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	try {
		throw;
	} catch (const pgml::Error &e) {
		switch (e.code()) {
		case pgml::ErrorCode::InvalidParameter: err->sqlstate = ERRCODE_INVALID_PARAMETER_VALUE; break;
		case pgml::ErrorCode::DataException: err->sqlstate = ERRCODE_DATA_EXCEPTION; break;
		case pgml::ErrorCode::NumericOutOfRange: err->sqlstate = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE; break;
		case pgml::ErrorCode::ProgramLimit: err->sqlstate = ERRCODE_PROGRAM_LIMIT_EXCEEDED; break;
		case pgml::ErrorCode::DataCorrupted: err->sqlstate = ERRCODE_DATA_CORRUPTED; break;
		case pgml::ErrorCode::FeatureNotSupported: err->sqlstate = ERRCODE_FEATURE_NOT_SUPPORTED; break;
		case pgml::ErrorCode::DatatypeMismatch: err->sqlstate = ERRCODE_DATATYPE_MISMATCH; break;
		case pgml::ErrorCode::UndefinedColumn: err->sqlstate = ERRCODE_UNDEFINED_COLUMN; break;
		case pgml::ErrorCode::InvalidBinary: err->sqlstate = ERRCODE_INVALID_BINARY_REPRESENTATION; break;
		case pgml::ErrorCode::OutOfMemory: err->sqlstate = ERRCODE_OUT_OF_MEMORY; break;
		case pgml::ErrorCode::Cancelled: err->sqlstate = ERRCODE_QUERY_CANCELED; err->cancelled = true; break;
		case pgml::ErrorCode::Internal: err->sqlstate = ERRCODE_INTERNAL_ERROR; break;
		}
		copy_text(err->message, sizeof err->message, e.what());
		copy_text(err->detail, sizeof err->detail, e.detail().c_str());
		copy_text(err->hint, sizeof err->hint, e.hint().c_str());
	} catch (const std::bad_alloc &) {
		/* also std::bad_array_new_length; Eigen throws bad_alloc too */
		err->sqlstate = ERRCODE_OUT_OF_MEMORY;
		copy_text(err->message, sizeof err->message, "out of memory");
		copy_text(err->detail, sizeof err->detail, "pg_ml could not allocate memory for a model computation.");
		copy_text(err->hint, sizeof err->hint, "Train on fewer rows or columns, or lower pg_ml.max_memory.");
	} catch (const std::length_error &e) {
		/* a container asked for more than it can ever hold: an allocation failure too */
		err->sqlstate = ERRCODE_OUT_OF_MEMORY;
		copy_text(err->message, sizeof err->message, "out of memory");
		copy_text(err->detail, sizeof err->detail, e.what());
		copy_text(err->hint, sizeof err->hint, "Train on fewer rows or columns, or lower pg_ml.max_memory.");
	} catch (const std::exception &e) {
		/* a library's own exception for a failed allocation (its text says so) is not a bug */
		const char *what = e.what();
		bool oom = strstr(what, "bad_alloc") != nullptr || strstr(what, "out of memory") != nullptr ||
				   strstr(what, "Memory allocation") != nullptr;
		err->sqlstate = oom ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INTERNAL_ERROR;
		copy_text(err->message, sizeof err->message, oom ? "out of memory" : "pg_ml internal error");
		copy_text(err->detail, sizeof err->detail, what);
		if (oom)
			copy_text(err->hint, sizeof err->hint, "Train on fewer rows or columns, or lower pg_ml.max_memory.");
	} catch (...) {
		err->sqlstate = ERRCODE_INTERNAL_ERROR;
		copy_text(err->message, sizeof err->message, "pg_ml internal error");
		copy_text(err->detail, sizeof err->detail, "An unknown exception reached the boundary.");
	}
}

void
pgml_raise(const PgmlCoreError *err)
{
	if (err->cancelled) {
		/* the core stopped because an interrupt is pending: let PostgreSQL raise it */
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("canceling statement due to user request")));
	}
	ereport(ERROR,
			(errcode(err->sqlstate), errmsg_internal("%s", err->message),
			 err->detail[0] ? errdetail_internal("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

bool
pgml_interrupt_pending()
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}
