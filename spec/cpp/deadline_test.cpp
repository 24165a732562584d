// deadline_test.cpp: LuaSocket's block/total timeout arithmetic.
#include "loop/deadline.hpp"

#include <catch2/catch.hpp>

using uvs::loop::Deadline;
using uvs::loop::Timeouts;
using uvs::loop::wait_ms;

TEST_CASE("no timeout set means no limit", "[deadline]") {
  const Deadline d(Timeouts{}, 100.0);
  CHECK_FALSE(d.never_wait());
  CHECK(d.remaining(105.0) < 0);
}

TEST_CASE("a block timeout alone bounds the whole call, as LuaSocket does on Unix", "[deadline]") {
  const Deadline d(Timeouts{2.0, -1.0}, 100.0);
  CHECK(d.remaining(100.0) == Approx(2.0));
  CHECK(d.remaining(101.5) == Approx(0.5));
  CHECK(d.remaining(103.0) == 0.0);
}

TEST_CASE("a total timeout alone counts from the start of the call", "[deadline]") {
  const Deadline d(Timeouts{-1.0, 3.0}, 10.0);
  CHECK(d.remaining(10.0) == Approx(3.0));
  CHECK(d.remaining(12.0) == Approx(1.0));
  CHECK(d.remaining(20.0) == 0.0);
}

TEST_CASE("with both set, block applies to each wait and total to the call", "[deadline]") {
  const Deadline d(Timeouts{1.0, 5.0}, 0.0);
  CHECK(d.remaining(0.0) == Approx(1.0));  // block is not reduced by elapsed time
  CHECK(d.remaining(3.0) == Approx(1.0));
  CHECK(d.remaining(4.5) == Approx(0.5));  // total is about to run out
  CHECK(d.remaining(6.0) == 0.0);
}

TEST_CASE("a zero block timeout never waits", "[deadline]") {
  CHECK(Deadline(Timeouts{0.0, -1.0}, 0.0).never_wait());
  CHECK_FALSE(Deadline(Timeouts{-1.0, 0.0}, 0.0).never_wait());
  CHECK(Deadline(Timeouts{-1.0, 0.0}, 0.0).remaining(0.0) == 0.0);
}

TEST_CASE("wait_ms rounds up and keeps -1 for no limit", "[deadline]") {
  CHECK(wait_ms(-1.0) == -1);
  CHECK(wait_ms(0.0) == 0);
  CHECK(wait_ms(0.0001) == 1);
  CHECK(wait_ms(1.0) == 1000);
  CHECK(wait_ms(1e12) == 2147483647);
}
