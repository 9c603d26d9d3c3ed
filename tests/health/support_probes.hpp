#pragma once
// A health result of a given status, for the probe and HTTP endpoint tests (an unhealthy one
// carries the error "refused").
#include <kysera/infra/health/result.hpp>

namespace kysera::test::health_support {

inline infra::health::health_check_result result_of(infra::health::health_status s) {
  infra::health::health_check_result r;
  r.status = s;
  if (s == infra::health::health_status::unhealthy) r.errors.push_back("refused");
  return r;
}

}  // namespace kysera::test::health_support
