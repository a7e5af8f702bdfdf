#include "threads.hpp"

#include <atomic>
#include <csignal>
#include <exception>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace pgml {

void parallel_for(int n, int threads, const std::function<void(int)> &task)
{
	if (n <= 0)
		return;
	if (threads < 1)
		threads = 1;
	if (threads > n)
		threads = n;
	std::atomic<int> next{0};
	std::exception_ptr first;
	std::mutex mu;
	auto worker = [&]() {
		for (;;) {
			int i = next.fetch_add(1);
			if (i >= n)
				return;
			{
				std::lock_guard<std::mutex> lock(mu);
				if (first)
					return;
			}
			try {
				task(i);
			} catch (...) {
				std::lock_guard<std::mutex> lock(mu);
				if (!first)
					first = std::current_exception();
			}
		}
	};
	if (threads == 1) {
		worker();
	} else {
		// new threads inherit the creating thread's signal mask: block everything around creation
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		std::vector<std::thread> pool;
		try {
			for (int t = 1; t < threads; t++)
				pool.emplace_back(worker);
		} catch (...) {
			pthread_sigmask(SIG_SETMASK, &old, nullptr);
			for (auto &th : pool)
				th.join();
			throw;
		}
		pthread_sigmask(SIG_SETMASK, &old, nullptr);
		worker();
		for (auto &th : pool)
			th.join();
	}
	if (first)
		std::rethrow_exception(first);
}

} // namespace pgml
