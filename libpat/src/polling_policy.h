// Whether a waiter should poll (spin) before it sleeps: only while the peer
// it waits for can run at the same time, on a CPU of its own.
//
// Polling saves the cost of waking a sleeper (tens of microseconds on a
// virtual machine) when a CPU is free. When every CPU is taken it costs far
// more than it saves: the poller keeps the CPU its peer needs, and the
// scheduler (EEVDF) counts the CPU time it burnt against it, so its own
// next wake-up waits too. Measured on 2 CPUs with a load of 10-13: a
// ping-pong of two processes over pipes took 14 µs sleeping at once, 130
// µs polling 20 µs before each sleep, 1.7 ms polling 500 µs; a pat.Executor
// round trip 2.4 ms with its 500 µs poll, 0.46 ms without (docs/python.md).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace pat::dataplane {

// True when polling pays now: more than one CPU is usable and no more tasks
// are runnable than that. Sampled at most every kPollingSampleEvery (the affinity
// mask and a read of /proc/loadavg), so cheap enough for every wait.
bool polling_pays();
inline constexpr std::chrono::milliseconds kPollingSampleEvery{20};

// The runnable tasks in /proc/loadavg's text ("0.52 0.58 0.59 2/285 18255":
// the numerator of the fourth field, proc(5)); nullopt if it is not that.
std::optional<unsigned> runnable_tasks(std::string_view loadavg);

}  // namespace pat::dataplane
