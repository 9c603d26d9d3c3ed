#pragma once
/// \file
/// `display_name`: a host's connection string made safe to log (its password masked).

#include <string>
#include <string_view>

#include "../../detail/secrets.hpp"

namespace kysera::infra::cluster::detail {

/// `scheme://user:secret@host/db` -> `scheme://user:***@host/db`; a libpq key/value string's
/// `password=...` value is masked too. Other text comes back unchanged.
inline std::string display_name(std::string_view url) {
  std::string out(url);
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    const auto begin = scheme + 3;
    const auto at = url.find('@', begin);
    if (at != std::string_view::npos) {
      const auto colon = url.find(':', begin);
      if (colon != std::string_view::npos && colon < at)
        out = infra::detail::redact(url, url.substr(colon + 1, at - colon - 1));
    }
    return out;
  }
  if (auto key = url.find("password="); key != std::string_view::npos) {
    const auto begin = key + 9;
    const auto end = url.find(' ', begin);
    out = infra::detail::redact(url, url.substr(begin, end == std::string_view::npos ? end : end - begin));
  }
  return out;
}

}  // namespace kysera::infra::cluster::detail
