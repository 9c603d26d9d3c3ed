#pragma once
/// \file
/// The resilience module (namespace kysera::infra::resilience).

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"

namespace kysera::infra::resilience {}
