#pragma once
/// \file
/// The HTTP endpoint (component `http`, target `kysera::infra-http`, needs cpp-httplib):
/// `/livez`, `/readyz`, `/startupz`, `/healthz` and `/metrics` served by `http::server`.
///
///     #include <kysera/infra/http.hpp>
///     kysera::infra::http::server endpoint(probes, {.port = 9464});

#include "http/responses.hpp"
#include "http/server.hpp"
