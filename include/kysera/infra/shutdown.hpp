#pragma once
/// \file
/// The shutdown module (namespace kysera::infra::shutdown).

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"

namespace kysera::infra::shutdown {}
