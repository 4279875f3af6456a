// polling_policy: reading the runnable count out of /proc/loadavg's text,
// and the one-CPU rule on this very process.
#include "libpat/src/polling_policy.h"

#include <doctest/doctest.h>

#include <sched.h>

#include <thread>

using pat::dataplane::kPollingSampleEvery;
using pat::dataplane::polling_pays;
using pat::dataplane::runnable_tasks;

TEST_CASE("runnable_tasks reads the numerator of /proc/loadavg's fourth field") {
  CHECK(runnable_tasks("0.52 0.58 0.59 2/285 18255\n") == 2u);
  CHECK(runnable_tasks("11.79 11.26 10.89 13/512 99999") == 13u);
  CHECK_FALSE(runnable_tasks("").has_value());
  CHECK_FALSE(runnable_tasks("0.52 0.58 0.59").has_value());
  CHECK_FALSE(runnable_tasks("0.52 0.58 0.59 x/285 1").has_value());
  CHECK_FALSE(runnable_tasks("0.52 0.58 0.59 7").has_value());
}

TEST_CASE("polling never pays for a thread confined to one CPU") {
  cpu_set_t all;
  REQUIRE(::sched_getaffinity(0, sizeof(all), &all) == 0);
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  REQUIRE(::sched_setaffinity(0, sizeof(one), &one) == 0);
  std::this_thread::sleep_for(kPollingSampleEvery * 2);  // past the cached answer
  bool pays = polling_pays();
  REQUIRE(::sched_setaffinity(0, sizeof(all), &all) == 0);
  CHECK_FALSE(pays);
}
