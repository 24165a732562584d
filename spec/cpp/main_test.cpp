// main_test.cpp: Catch2's main for the unit tests of the pure layer.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
