// pg_ml command line: failures and the exit codes they map to (documented in `pg_ml --help`).
#pragma once

#include <stdexcept>
#include <string>

namespace pgml_cli {

enum ExitCode {
	kExitOk = 0,
	kExitUsage = 1,      // bad command line
	kExitConnection = 2, // could not connect or authenticate (libpq's message)
	kExitInput = 3,      // bad input file (file:line: column: message)
	kExitServer = 4      // the server reported an error (message, detail, hint)
};

// A failure with its exit code; what() is printed after "pg_ml: error: " (usage, connection, server)
// or as is (input: it starts with FILE:LINE).
class Failure : public std::runtime_error {
  public:
	Failure(ExitCode code, const std::string &message) : std::runtime_error(message), code_(code) {}
	ExitCode code() const { return code_; }

  private:
	ExitCode code_;
};

struct UsageError : Failure {
	std::string command;
	UsageError(const std::string &m, std::string cmd = {}) : Failure(kExitUsage, m), command(std::move(cmd)) {}
};
struct InputError : Failure {
	explicit InputError(const std::string &m) : Failure(kExitInput, m) {}
};

} // namespace pgml_cli
