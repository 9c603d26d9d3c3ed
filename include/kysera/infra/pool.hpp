#pragma once
/// \file
/// The pool module (namespace kysera::infra::pool).

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"

namespace kysera::infra::pool {}
