#pragma once
// Helpers that keep passwords out of messages.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kysera::infra::detail {

/// Replaces every byte of `text` that lies inside an occurrence of any of `secrets` with one
/// "***" per masked run. The occurrences are all found in the original text before anything is
/// replaced, so the result depends neither on the order of `secrets` nor on one secret being a
/// prefix, suffix or part of another (`password=a password=ab` loses both, never leaves `b`).
/// Empty secrets are ignored.
inline std::string redact(std::string_view text, const std::vector<std::string>& secrets) {
  if (text.empty() || secrets.empty()) return std::string(text);
  std::vector<bool> masked;
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string_view::npos;
         pos = text.find(secret, pos + 1)) {
      if (masked.empty()) masked.assign(text.size(), false);
      std::fill(masked.begin() + static_cast<std::ptrdiff_t>(pos),
                masked.begin() + static_cast<std::ptrdiff_t>(pos + secret.size()), true);
    }
  }
  if (masked.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!masked[i]) {
      out.push_back(text[i]);
    } else if (i == 0 || !masked[i - 1]) {
      out += "***";
    }
  }
  return out;
}

/// `redact` for a single secret.
inline std::string redact(std::string_view text, std::string_view secret) {
  if (secret.empty()) return std::string(text);
  return redact(text, std::vector<std::string>{std::string(secret)});
}

/// Adds `secret` to `secrets` unless it is empty or already there.
inline void add_secret(std::vector<std::string>& secrets, std::string secret) {
  if (secret.empty()) return;
  if (std::find(secrets.begin(), secrets.end(), secret) != secrets.end()) return;
  secrets.push_back(std::move(secret));
}

}  // namespace kysera::infra::detail
