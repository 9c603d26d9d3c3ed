#pragma once
// The tests name the shipped test doubles (manual_clock) as kysera::test::*.
#include <kysera/infra/testing/manual_clock.hpp>

namespace kysera::test {
using namespace kysera::infra::testing;
}  // namespace kysera::test
