#pragma once
/// \file
/// `connect_throttle<Clock>`: when the pool may dial the server. It caps the connects in flight
/// (`max_connecting`) and, after consecutive failed connects, closes a backoff window in which
/// the pool opens nothing; after the window one probe connect decides whether it opens again.

#include <chrono>
#include <cstddef>
#include <exception>
#include <string>
#include <system_error>

#include "../../detail/time.hpp"
#include "../../error.hpp"
#include "../../resilience/backoff.hpp"
#include "../options.hpp"

namespace kysera::infra::pool::detail {

/// Value type: what the last failed connect threw, kept to fail the throttled acquires with.
struct connect_error {
  errc code = errc::backend_error;
  std::string message;
  std::string backend;

  /// The exception being handled (call inside a `catch`). Never throws: without memory for the
  /// text, the code alone.
  static connect_error current() noexcept {
    connect_error e;
    try {
      throw;
    } catch (const database_error& x) {
      e.code = x.condition();
      e.set_text(x.what(), x.backend());
    } catch (const std::system_error& x) {
      if (is_infra_error(x.code())) e.code = static_cast<errc>(x.code().value());
      e.set_text(x.what(), {});
    } catch (const std::exception& x) {
      e.set_text(x.what(), {});
    } catch (...) {
      e.set_text("unknown error", {});
    }
    return e;
  }

 private:
  void set_text(const char* what, const std::string& from) noexcept {
    try {
      message = what;
      backend = from;
    } catch (...) {
      message.clear();
      backend.clear();
    }
  }
};

/// What the throttle says to a caller that would open a connection.
enum class connect_verdict {
  connect,  ///< go ahead (the caller then calls started())
  wait,     ///< too many connects in flight, or a probe is: queue until one ends
  fail,     ///< a backoff window is open: fail at once with the last connect error
};

/// Not thread-safe: the pool's mutex guards every call.
template <class Clock>
class connect_throttle {
 public:
  using time_point = typename Clock::time_point;

  explicit connect_throttle(const pool_options& o) noexcept
      : max_connecting_(o.max_connecting),
        after_(o.connect_backoff_after),
        initial_(o.connect_backoff_initial),
        cap_(o.connect_backoff_max),
        jitter_(o.connect_backoff_jitter) {}

  /// May one more connect start at `now`?
  connect_verdict check(time_point now) const noexcept {
    if (backing_off()) {
      if (now < until_) return connect_verdict::fail;
      if (connecting_ > 0) return connect_verdict::wait;  // one probe, not a herd
    }
    if (max_connecting_ != 0 && connecting_ >= max_connecting_) return connect_verdict::wait;
    return connect_verdict::connect;
  }

  /// A connect check() allowed has begun.
  void started() noexcept { ++connecting_; }

  /// A connect has succeeded: the server is back, the backoff is over.
  void succeeded() noexcept {
    --connecting_;
    failures_ = 0;
    windows_ = 0;
  }

  /// A connect has failed at `now` with `error`; `unit` (in [0, 1)) draws the jitter. Returns
  /// whether that began a backoff window: the failure that reaches `connect_backoff_after`, or a
  /// failed probe. Connects that were already in flight when a window began do not extend it.
  bool failed(time_point now, connect_error error, double unit) noexcept {
    --connecting_;
    ++failures_;
    last_ = std::move(error);
    if (initial_.count() == 0 || failures_ < after_) return false;
    if (failures_ > after_ && now < until_) return false;
    ++windows_;
    const auto delay =
        resilience::backoff_delay(initial_, cap_, true, jitter_, static_cast<int>(windows_), unit);
    until_ = infra::detail::saturating_add(
        now, infra::detail::saturating_duration_cast<typename Clock::duration>(delay));
    return true;
  }

  /// True while failures keep the pool from dialling freely (in a window, or probing after one).
  bool backing_off() const noexcept { return initial_.count() != 0 && failures_ >= after_; }
  /// The end of the current (or last) backoff window.
  time_point window_end() const noexcept { return until_; }
  std::size_t connecting() const noexcept { return connecting_; }
  bool has_failed() const noexcept { return failures_ != 0; }

  /// The error an acquire throws in a backoff window at `now`: the last connect error's code,
  /// with a message that says why nothing was dialled.
  database_error throttled_error(time_point now) const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        infra::detail::saturating_sub(until_, now));
    std::string msg = "connection pool: not connecting for another " +
                      std::to_string(left.count() < 0 ? 0 : left.count()) + " ms after " +
                      std::to_string(failures_) + " failed connects; last error: " + last_.message;
    return database_error(last_.code, msg, last_.backend.empty() ? "pool" : last_.backend);
  }

  /// The last connect error as thrown (for warm_up).
  database_error last_error() const {
    return database_error(last_.code, last_.message, last_.backend.empty() ? "pool" : last_.backend);
  }

 private:
  const std::size_t max_connecting_;
  const std::size_t after_;
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds cap_;
  const double jitter_;
  std::size_t connecting_ = 0;  // connects in flight
  std::size_t failures_ = 0;    // consecutive failed connects
  std::size_t windows_ = 0;     // backoff windows since the last success
  time_point until_{};
  connect_error last_;
};

}  // namespace kysera::infra::pool::detail
