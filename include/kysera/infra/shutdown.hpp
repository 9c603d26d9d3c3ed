#pragma once
/// \file
/// The shutdown module (namespace kysera::infra::shutdown): `graceful_shutdown`,
/// `shutdown_database`, and on POSIX systems (Linux, macOS) `register_shutdown_handlers` and
/// `create_shutdown_controller`.

#include "shutdown/graceful.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include "shutdown/controller.hpp"
#include "shutdown/signals.hpp"
#endif
