#pragma once
/// \file
/// The health module (namespace kysera::infra::health).

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"

namespace kysera::infra::health {}
