#pragma once
/// \file
/// `rows`: a fully materialised result, returned by the MySQL and SQLite adapters' `execute`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kysera::infra {

/// A value type: not synchronised, like any standard container. A statement's result, copied
/// out of the driver so it stays valid after the connection moves on.
///
///     auto r = db.execute("select id, name from users");
///     for (std::size_t i = 0; i < r.size(); ++i) use(r.at(i, "name").value_or("(null)"));
struct rows {
  std::vector<std::string> columns;                             ///< column names, in order
  std::vector<std::vector<std::optional<std::string>>> values;  ///< one vector per row; nullopt is NULL
  std::uint64_t affected_rows = 0;  ///< rows changed by INSERT/UPDATE/DELETE
  std::optional<std::int64_t> last_insert_id;  ///< where the backend reports one

  std::size_t size() const noexcept { return values.size(); }
  bool empty() const noexcept { return values.empty(); }

  /// The value at (`row`, `column`); throws `std::out_of_range` for a bad index.
  const std::optional<std::string>& at(std::size_t row, std::size_t column) const {
    return values.at(row).at(column);
  }
  /// The value at `row` of the column named `name`; throws `std::out_of_range` if there is none.
  const std::optional<std::string>& at(std::size_t row, std::string_view name) const {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (columns[c] == name) return at(row, c);
    }
    throw std::out_of_range("no column named '" + std::string(name) + "'");
  }
};

}  // namespace kysera::infra
