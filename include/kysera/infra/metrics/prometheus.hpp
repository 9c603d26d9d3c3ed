#pragma once
/// \file
/// Prometheus exposition of a `registry`: the text format 0.0.4 and OpenMetrics 1.0.
/// OpenTelemetry names become Prometheus ones: dots (and every other character Prometheus does
/// not allow) become underscores, the unit becomes a suffix (`s` -> `_seconds`; units in braces
/// add nothing), counters end in `_total`.

#include <charconv>
#include <chrono>
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "registry.hpp"
#include "visitor.hpp"

namespace kysera::infra::metrics {

enum class exposition_format {
  prometheus_text,  ///< text format 0.0.4
  openmetrics,      ///< OpenMetrics 1.0: `# UNIT`, `_created`, `# EOF`
};

/// The HTTP Content-Type of each format.
constexpr std::string_view content_type(exposition_format f) noexcept {
  return f == exposition_format::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                             : "text/plain; version=0.0.4; charset=utf-8";
}

namespace detail {

/// Appends `name` with every character outside [a-zA-Z0-9_:] replaced by '_' (and '_' before a
/// leading digit, or for an empty name); `allow_colon` false for label names.
inline void append_name(std::string& out, std::string_view name, bool allow_colon = true) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) out += '_';
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    (allow_colon && c == ':');
    out += ok ? c : '_';
  }
}

/// The Prometheus unit word for a UCUM unit, or empty (no suffix).
constexpr std::string_view unit_word(std::string_view ucum) noexcept {
  if (ucum == "s") return "seconds";
  if (ucum == "ms") return "milliseconds";
  if (ucum == "us") return "microseconds";
  if (ucum == "ns") return "nanoseconds";
  if (ucum == "By") return "bytes";
  if (ucum == "%") return "percent";
  return {};
}

inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// The family name: sanitised, with the unit suffix, without a trailing `_total`.
inline std::string family_name(const descriptor& d) {
  std::string n;
  append_name(n, d.name);
  if (ends_with(n, "_total")) n.resize(n.size() - 6);
  const auto word = unit_word(d.unit);
  if (!word.empty() && !ends_with(n, "_" + std::string(word))) {
    n += '_';
    n += word;
  }
  return n;
}

/// Shortest round-trip form; `integral_dot` writes 1 as "1.0" (for `le`, as OpenMetrics wants).
inline void append_number(std::string& out, double v, bool integral_dot = false) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // integral: the cheap conversion, same text
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    out.append(buf, r.ptr);
    if (integral_dot) out += ".0";
    return;
  }
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  out += s;
  if (integral_dot && s.find_first_of(".e") == std::string_view::npos) out += ".0";
}

/// Escapes backslash, newline and (in label values, and OpenMetrics HELP) the double quote.
inline void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace detail

/// Not thread-safe (one scrape per writer). A `visitor` that appends the exposition to a string;
/// `finish()` ends it (OpenMetrics: `# EOF`). Relies on the visitor contract that calls come
/// grouped by family.
///
///     std::string text;
///     prometheus_writer w(text, exposition_format::openmetrics);
///     reg.collect(w);
///     w.finish();
class prometheus_writer final : public visitor {
 public:
  explicit prometheus_writer(std::string& out, exposition_format format = exposition_format::prometheus_text) noexcept
      : out_(out), format_(format) {}

  void on_gauge(const descriptor& d, std::span<const attribute> a, double value) override {
    header(d, "gauge", false);
    render_labels(a);
    sample("", {}, value);
  }

  void on_counter(const descriptor& d, std::span<const attribute> a, double value, time_point created) override {
    header(d, "counter", true);
    render_labels(a);
    sample("_total", {}, value);
    if (om()) sample("_created", {}, seconds(created));
  }

  void on_histogram(const descriptor& d, std::span<const attribute> a, const histogram_snapshot& h,
                    time_point created) override {
    header(d, "histogram", false);
    render_labels(a);
    if (h.bounds != bounds_) {  // series of one family usually share their bounds
      bounds_ = h.bounds;
      le_.clear();
      for (double b : bounds_) {
        le_.emplace_back();
        detail::append_number(le_.back(), b, true);
      }
      le_.emplace_back("+Inf");
    }
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
      cumulative += i < h.counts.size() ? h.counts[i] : 0;
      sample("_bucket", le_[i], static_cast<double>(cumulative));
    }
    sample("_sum", {}, h.sum);
    sample("_count", {}, static_cast<double>(cumulative));
    if (om()) sample("_created", {}, seconds(created));
  }

  /// Ends the exposition: `# EOF` for OpenMetrics, nothing for the text format.
  void finish() {
    if (om()) out_ += "# EOF\n";
  }

 private:
  bool om() const noexcept { return format_ == exposition_format::openmetrics; }

  static double seconds(time_point t) noexcept {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
  }

  /// Writes HELP/TYPE (and UNIT) when a new family starts; `family_` is its name.
  void header(const descriptor& d, std::string_view type, bool counter) {
    if (d.name == last_name_ && d.unit == last_unit_) return;
    last_name_.assign(d.name);
    last_unit_.assign(d.unit);
    std::string family = detail::family_name(d);
    if (family == family_) return;  // another spelling of the same family
    family_ = std::move(family);
    // The text format names a counter's metadata after its sample (`x_total`).
    const std::string meta = counter && !om() ? family_ + "_total" : family_;
    out_ += "# HELP ";
    out_ += meta;
    out_ += ' ';
    detail::append_escaped(out_, d.description, om());
    out_ += "\n# TYPE ";
    out_ += meta;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
    const auto word = detail::unit_word(d.unit);
    if (om() && !word.empty()) {
      out_ += "# UNIT ";
      out_ += family_;
      out_ += ' ';
      out_ += word;
      out_ += '\n';
    }
  }

  /// The series' labels, escaped once for all its samples: `k="v",...` without braces.
  void render_labels(std::span<const attribute> a) {
    labels_.clear();
    for (const auto& [key, val] : a) {
      if (!labels_.empty()) labels_ += ',';
      detail::append_name(labels_, key, false);
      labels_ += "=\"";
      detail::append_escaped(labels_, val, true);
      labels_ += '"';
    }
  }

  void sample(std::string_view suffix, std::string_view le, double value) {
    out_ += family_;
    out_ += suffix;
    if (!labels_.empty() || !le.empty()) {
      out_ += '{';
      out_ += labels_;
      if (!le.empty()) {
        if (!labels_.empty()) out_ += ',';
        out_ += "le=\"";
        out_ += le;
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    detail::append_number(out_, value);
    out_ += '\n';
  }

  std::string& out_;
  exposition_format format_;
  std::string last_name_, last_unit_, family_;  // the family being written
  std::string labels_;                          // scratch, reused
  std::vector<double> bounds_;                  // the bounds `le_` renders
  std::vector<std::string> le_;

};

/// One scrape of `reg` in `format`.
///
///     auto body = kysera::infra::metrics::to_prometheus(reg);  // serve with content_type(...)
inline std::string to_prometheus(const registry& reg, exposition_format format = exposition_format::prometheus_text) {
  std::string out;
  prometheus_writer w(out, format);
  reg.collect(w);
  w.finish();
  return out;
}

/// `to_prometheus(reg, exposition_format::openmetrics)`.
inline std::string to_openmetrics(const registry& reg) { return to_prometheus(reg, exposition_format::openmetrics); }

}  // namespace kysera::infra::metrics
