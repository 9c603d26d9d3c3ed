#pragma once
/// \file
/// The query recorder under `with_debug`: `debug_options`, `basic_query_metric`, and the bounded
/// ring of entries (`detail::query_ring`) with the timer that fills it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../detail/tick_clock.hpp"
#include "../error.hpp"
#include "query_sample.hpp"

namespace kysera::infra::metrics {

/// Options of `with_debug`. Invalid values throw `std::invalid_argument` naming the field.
///
/// The SQL text of a query may hold sensitive data (literals with personal data, tokens):
/// it is kept in memory only, truncated to `max_sql_length` bytes, and `record_sql = false`
/// keeps none at all.
struct debug_options {
  /// In [1, max_metrics_limit]; ring buffer size (the newest entries stay). About 50 bytes per
  /// entry plus the SQL text kept.
  std::size_t max_metrics = 1000;
  bool record_sql = true;             ///< false: entries carry no SQL text
  std::size_t max_sql_length = 256;   ///< longer statements are cut (at a UTF-8 boundary)

  /// The largest `max_metrics` accepted (about 500 MB of entries, the SQL text aside).
  static constexpr std::size_t max_metrics_limit = 10'000'000;
};

/// One recorded query, or one whole transaction (`transaction` set). `Clock` is the wrapper's clock.
template <class Clock = std::chrono::steady_clock>
struct basic_query_metric {
  std::string sql;             ///< empty when `record_sql` is false; "TRANSACTION" for a transaction
  double duration = 0.0;       ///< ms, not rounded
  bool failed = false;         ///< `execute` (or the transaction) threw
  bool sql_truncated = false;  ///< `sql` was cut at `max_sql_length`
  typename Clock::time_point timestamp{};  ///< when the query ended
  bool transaction = false;    ///< the entry is a whole `transaction(fn)` call, BEGIN to COMMIT
  std::optional<infra::errc> error{};  ///< the error's code when it was one of ours
};

/// A recorded query as used by the wrapper's default clock.
using query_metric = basic_query_metric<>;

namespace detail {

/// The length of `sql` cut to at most `limit` bytes without splitting a UTF-8 sequence.
inline std::size_t utf8_prefix_length(std::string_view sql, std::size_t limit) noexcept {
  if (sql.size() <= limit) return sql.size();
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(sql[n]) & 0xC0u) == 0x80u) --n;
  return n;
}

/// How the recorder reads `Clock`: a stamp per query end and start, and a raw duration that a
/// `reader` (made once per read of the ring) turns into milliseconds. Any clock: its own time
/// points, durations in ms.
template <class Clock>
struct query_time {
  using stamp = typename Clock::time_point;
  static stamp now() noexcept(noexcept(Clock::now())) { return Clock::now(); }
  static double raw_duration(stamp start, stamp end) noexcept {
    return std::chrono::duration<double, std::milli>(end - start).count();
  }
  struct reader {
    double ms(double raw) const noexcept { return raw; }
    stamp time(stamp s) const noexcept { return s; }
    stamp at(stamp t) const noexcept { return t; }
  };
};

/// steady_clock, the default: `tick_clock` stamps (one TSC read where the kernel's clock is the
/// TSC), durations in ticks.
template <>
struct query_time<std::chrono::steady_clock> {
  using stamp = infra::detail::tick_clock::stamp;
  static stamp now() noexcept { return infra::detail::tick_clock::now(); }
  static double raw_duration(stamp start, stamp end) noexcept {
    return end > start ? static_cast<double>(end - start) : 0.0;  // never a wrapped difference
  }
  using reader = infra::detail::tick_clock::converter;
};

/// Thread-safe (one mutex, held only to copy an entry in or out). A fixed-size ring of query
/// entries, stored column-wise so that aggregation reads little memory. Time as `query_time`.
template <class Clock>
class query_ring {
 public:
  using time_point = typename Clock::time_point;
  using times = query_time<Clock>;
  using stamp = typename times::stamp;

  explicit query_ring(const debug_options& o)
      : capacity_(o.max_metrics),
        record_sql_(o.record_sql),
        max_sql_length_(o.max_sql_length),
        durations_(o.max_metrics),
        stamps_(o.max_metrics),
        flags_(o.max_metrics),
        codes_(o.max_metrics),
        sql_(o.record_sql ? o.max_metrics : 0) {
    (void)typename times::reader{};  // the clock's one-time set-up now, not in the first query
  }

  /// `duration`: `times::raw_duration`; `code`: an `errc` value, 0 for none.
  void record(std::string_view sql, stamp end, double duration, bool failed, bool transaction = false,
              std::uint8_t code = 0) noexcept {
    std::size_t keep = 0;
    std::uint8_t flags = static_cast<std::uint8_t>((failed ? flag_failed : 0) | (transaction ? flag_transaction : 0));
    if (record_sql_) {
      keep = utf8_prefix_length(sql, max_sql_length_);
      if (keep < sql.size()) flags |= flag_truncated;
    }
    std::lock_guard lock(mutex_);
    const std::size_t i = head_;
    durations_[i] = duration;
    stamps_[i] = end;
    flags_[i] = flags;
    codes_[i] = code;
    if (record_sql_) {
      try {
        sql_[i].assign(sql.data(), keep);  // reuses the slot's buffer once the ring has wrapped
      } catch (...) {
        sql_[i].clear();
      }
    }
    head_ = i + 1 == capacity_ ? 0 : i + 1;
    if (size_ < capacity_) ++size_;
    ++recorded_;
  }

  std::vector<basic_query_metric<Clock>> snapshot() const {
    std::vector<basic_query_metric<Clock>> out;
    const typename times::reader clock;
    std::lock_guard lock(mutex_);
    out.resize(size_);
    std::size_t i = oldest();
    for (std::size_t k = 0; k < size_; ++k) {
      auto& m = out[k];
      m.duration = clock.ms(durations_[i]);
      m.timestamp = clock.time(stamps_[i]);
      m.failed = (flags_[i] & flag_failed) != 0;
      m.sql_truncated = (flags_[i] & flag_truncated) != 0;
      m.transaction = (flags_[i] & flag_transaction) != 0;
      m.error = code_of(codes_[i]);
      if (record_sql_) m.sql = sql_[i];
      i = i + 1 == capacity_ ? 0 : i + 1;
    }
    return out;
  }

  /// The durations of the entries that ended at or after `since`.
  period_durations durations_since(time_point since) const {
    period_durations out;
    const typename times::reader clock;
    const stamp from = clock.at(since);
    std::lock_guard lock(mutex_);
    out.statements.ms.resize(size_);  // trimmed below; filled without a capacity check per entry
    double* next = out.statements.ms.data();
    // The ring in age order is at most two contiguous runs: [oldest, capacity) and [0, head).
    const std::size_t first = oldest();
    const std::size_t runs[2][2] = {{first, std::min(capacity_, first + size_)},
                                    {0, first + size_ > capacity_ ? first + size_ - capacity_ : 0}};
    for (const auto& run : runs) {
      for (std::size_t i = run[0]; i < run[1]; ++i) {
        if (stamps_[i] < from) continue;
        const std::uint8_t f = flags_[i];
        if ((f & (flag_failed | flag_transaction)) == 0) [[likely]] {
          *next++ = clock.ms(durations_[i]);
        } else if ((f & flag_transaction) != 0) {
          out.add(clock.ms(durations_[i]), (f & flag_failed) != 0, true, code_of(codes_[i]));
        } else {
          *next++ = clock.ms(durations_[i]);
          ++out.statements.failed;
          if (auto code = code_of(codes_[i]); code && detail::is_database_wait(*code)) {
            ++out.statements.database_waits;
          }
        }
      }
    }
    out.statements.ms.resize(static_cast<std::size_t>(next - out.statements.ms.data()));
    return out;
  }

  /// Entries that ended at or after `since`, without their text.
  std::vector<query_sample> samples_since(time_point since) const {
    std::vector<query_sample> out;
    const typename times::reader clock;
    const stamp from = clock.at(since);
    std::lock_guard lock(mutex_);
    out.reserve(size_);
    std::size_t i = oldest();
    for (std::size_t k = 0; k < size_; ++k) {
      if (stamps_[i] >= from) {
        out.push_back(query_sample{clock.ms(durations_[i]), (flags_[i] & flag_failed) != 0,
                                   (flags_[i] & flag_transaction) != 0, code_of(codes_[i])});
      }
      i = i + 1 == capacity_ ? 0 : i + 1;
    }
    return out;
  }

  void clear() noexcept {
    std::lock_guard lock(mutex_);
    head_ = 0;
    size_ = 0;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }
  std::uint64_t recorded() const {
    std::lock_guard lock(mutex_);
    return recorded_;
  }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr std::uint8_t flag_failed = 1;
  static constexpr std::uint8_t flag_truncated = 2;
  static constexpr std::uint8_t flag_transaction = 4;

  static std::optional<infra::errc> code_of(std::uint8_t code) noexcept {
    if (code == 0) return std::nullopt;
    return static_cast<infra::errc>(code);
  }

  std::size_t oldest() const noexcept { return size_ < capacity_ ? 0 : head_; }

  const std::size_t capacity_;
  const bool record_sql_;
  const std::size_t max_sql_length_;
  mutable std::mutex mutex_;
  std::size_t head_ = 0;  // next slot to write
  std::size_t size_ = 0;
  std::uint64_t recorded_ = 0;
  std::vector<double> durations_;  // times::raw_duration
  std::vector<stamp> stamps_;
  std::vector<std::uint8_t> flags_;
  std::vector<std::uint8_t> codes_;
  std::vector<std::string> sql_;
};

/// Not thread-safe: lives on the stack of the call it times. Times one `execute` (or
/// `transaction`) call and records it when the call ends, however it ends. Records after the result has been built, so the duration covers the whole call. A call
/// that throws is marked by `fail()` (recorded_call does it), so no std::uncaught_exceptions()
/// is needed on the success path.
template <class Clock>
class query_timer {
  using times = query_time<Clock>;

 public:
  query_timer(query_ring<Clock>& ring, std::string_view sql, bool transaction = false) noexcept
      : ring_(ring), sql_(sql), transaction_(transaction), start_(times::now()) {}
  ~query_timer() {
    const auto end = times::now();
    ring_.record(sql_, end, times::raw_duration(start_, end), failed_, transaction_, code_);
  }
  query_timer(const query_timer&) = delete;
  query_timer& operator=(const query_timer&) = delete;

  /// Notes the exception that ends the call (its code, when it is one of ours).
  void fail(const std::exception_ptr& e) noexcept {
    failed_ = true;
    try {
      std::rethrow_exception(e);
    } catch (const std::system_error& se) {
      if (infra::is_infra_error(se.code()) && se.code().value() > 0 && se.code().value() < 256) {
        code_ = static_cast<std::uint8_t>(se.code().value());
      }
    } catch (...) {
    }
  }

 private:
  query_ring<Clock>& ring_;
  std::string_view sql_;
  bool transaction_;
  bool failed_ = false;
  std::uint8_t code_ = 0;
  typename times::stamp start_;
};

/// Runs `call()` timed by a `query_timer` on `ring`, noting the error it throws.
template <class Clock, class Call>
decltype(auto) recorded_call(query_ring<Clock>& ring, std::string_view sql, bool transaction, Call&& call) {
  query_timer<Clock> timer(ring, sql, transaction);
  try {
    return std::forward<Call>(call)();
  } catch (...) {
    timer.fail(std::current_exception());
    throw;
  }
}

inline constexpr std::string_view transaction_label = "TRANSACTION";

}  // namespace detail

}  // namespace kysera::infra::metrics
