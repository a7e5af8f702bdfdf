// pg_ml core: the only way the core starts threads.
//
// Threads started here block every signal (the backend's signal handlers must only ever
// run on the backend's own thread) and never call into PostgreSQL (the core cannot).
#pragma once

#include <functional>

namespace pgml {

// Runs task(i) for i in [0, n) on at most `threads` threads (the calling thread included)
// and waits for all. The first exception thrown by a task is rethrown here after every
// thread has finished; tasks should poll their own cancellation flag to stop early.
void parallel_for(int n, int threads, const std::function<void(int)> &task);

} // namespace pgml
