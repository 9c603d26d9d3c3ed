#pragma once
/// \file
/// `query_sample` and `period_durations`: what a recording wrapper hands `get_metrics` about the
/// entries of a period (the metrics layer's value types; `health::` names them too).

#include <cstddef>
#include <optional>
#include <vector>

#include "../error.hpp"

namespace kysera::infra::metrics {

/// Duration and outcome of a query, without its text (what `get_metrics` needs).
struct query_sample {
  double duration = 0.0;  ///< ms
  bool failed = false;
  bool transaction = false;            ///< a whole transaction, not one statement
  std::optional<infra::errc> error{};  ///< the error's code when it was one of ours
};

namespace detail {

/// Errors that show the database (not the pool) is what callers wait for: it does not answer in
/// time, drops or refuses sessions, or holds locks.
constexpr bool is_database_wait(infra::errc code) noexcept {
  switch (code) {
    case infra::errc::timeout:
    case infra::errc::connection_lost:
    case infra::errc::connection_refused:
    case infra::errc::too_many_connections:
    case infra::errc::lock_timeout:
    case infra::errc::busy:
    case infra::errc::cancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace detail

/// The entries of a period in the form `get_metrics` computes on: durations only (ms, in no
/// particular order), statements and whole transactions apart, with their failure counts.
/// A value type.
struct period_durations {
  struct set {
    std::vector<double> ms;
    std::size_t failed = 0;          ///< entries that threw
    std::size_t database_waits = 0;  ///< failures that were the database's (`is_database_wait`)
  };
  set statements;
  set transactions;

  void add(double duration, bool failed, bool transaction, std::optional<infra::errc> error) {
    set& to = transaction ? transactions : statements;
    to.ms.push_back(duration);
    if (failed) {
      ++to.failed;
      if (error && detail::is_database_wait(*error)) ++to.database_waits;
    }
  }
  void add(const query_sample& q) { add(q.duration, q.failed, q.transaction, q.error); }
};

}  // namespace kysera::infra::metrics
