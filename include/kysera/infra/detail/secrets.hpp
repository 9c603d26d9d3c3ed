#pragma once
// Helpers that keep passwords out of messages.

#include <string>
#include <string_view>

namespace kysera::infra::detail {

/// Replaces every occurrence of `secret` in `text` with "***". An empty secret changes nothing.
inline std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  std::string::size_type pos = 0;
  while ((pos = text.find(secret, pos)) != std::string::npos) {
    text.replace(pos, secret.size(), "***");
    pos += 3;
  }
  return text;
}

}  // namespace kysera::infra::detail
