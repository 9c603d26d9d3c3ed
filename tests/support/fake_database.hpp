#pragma once
// The tests name the shipped test doubles (fake_database, fake_connection, minimal_database) as kysera::test::*.
#include <kysera/infra/testing/fake_database.hpp>

namespace kysera::test {
using namespace kysera::infra::testing;
}  // namespace kysera::test
