#pragma once
// error_of(fn): the database_error `fn` throws. Fails the test when it throws nothing or
// something else.
#include <kysera/infra/error.hpp>

#include <exception>
#include <stdexcept>

#include "support/catch.hpp"

namespace kysera::test {

template <class Fn>
infra::database_error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const infra::database_error& e) {
    return e;
  } catch (const std::exception& e) {
    FAIL("expected a database_error, got: " << e.what());
  }
  FAIL("expected a database_error, nothing was thrown");
  throw std::logic_error("unreachable");
}

}  // namespace kysera::test
