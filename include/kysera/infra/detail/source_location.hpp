#pragma once
/// \file
/// `detail::source_location`: `std::source_location` where the standard library has it, else a
/// stand-in with the same members built on the same compiler builtins (libstdc++ under Clang
/// before 15 has no `std::source_location`).

#include <cstdint>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace kysera::infra::detail {

#if defined(__cpp_lib_source_location)
using source_location = std::source_location;
#else
/// Value type: where a call was made, taken by a defaulted `current()` argument as with
/// `std::source_location` (no column).
///
///     void f(source_location where = source_location::current());
class source_location {
 public:
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           std::uint_least32_t line = __builtin_LINE()) noexcept {
    source_location l;
    l.file_ = file;
    l.function_ = function;
    l.line_ = line;
    return l;
  }
  constexpr source_location() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};
#endif

}  // namespace kysera::infra::detail
