#pragma once
// Shared by the fuzz harnesses: a check that aborts (so libFuzzer and the corpus runner both
// report the input), and the normal form of a message used to compare it with its templates.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define KYSERA_FUZZ_CHECK(cond, what)                                                    \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d): %s\n", #cond, __FILE__,   \
                   __LINE__, std::string(what).c_str());                                 \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace kysera::fuzz {

/// The message with every run of digits replaced by "N": what stays is the template.
inline std::string digits_as_n(std::string_view message) {
  std::string out;
  bool in_digits = false;
  for (char c : message) {
    if (c >= '0' && c <= '9') {
      if (!in_digits) out.push_back('N');
      in_digits = true;
    } else {
      out.push_back(c);
      in_digits = false;
    }
  }
  return out;
}

/// Whether `message` is `prefix` followed by one of `templates` (after digits_as_n).
template <class Range>
bool matches_a_template(std::string_view message, std::string_view prefix, const Range& templates) {
  std::string normal = digits_as_n(message);
  if (normal.compare(0, prefix.size(), prefix) != 0) return false;
  std::string_view rest = std::string_view(normal).substr(prefix.size());
  for (std::string_view t : templates) {
    if (rest == t) return true;
  }
  return false;
}

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace kysera::fuzz
