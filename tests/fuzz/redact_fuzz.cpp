// Fuzzes detail::redact. The input is split at 0x01 bytes: the first part is the text, the others
// are secrets. Properties: no secret (without '*', which "***" could spell) is left in the
// result; the result does not depend on the order of the secrets; a text holding no secret comes
// back unchanged.
#include "fuzz_check.hpp"

#include <kysera/infra/detail/secrets.hpp>

#include <algorithm>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view input = kysera::fuzz::as_text(data, size);
  std::vector<std::string> parts;
  while (true) {
    auto cut = input.find('\x01');
    parts.emplace_back(input.substr(0, cut));
    if (cut == std::string_view::npos) break;
    input.remove_prefix(cut + 1);
  }
  const std::string text = parts.front();
  std::vector<std::string> secrets(parts.begin() + 1, parts.end());
  const std::string masked = kysera::infra::detail::redact(text, secrets);
  auto reversed = secrets;
  std::reverse(reversed.begin(), reversed.end());
  KYSERA_FUZZ_CHECK(kysera::infra::detail::redact(text, reversed) == masked, "order matters");
  bool any = false;
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    any = any || text.find(s) != std::string::npos;
    if (s.find('*') != std::string::npos) continue;
    KYSERA_FUZZ_CHECK(masked.find(s) == std::string::npos, s);
  }
  if (!any) KYSERA_FUZZ_CHECK(masked == text, "changed a text without secrets");
  return 0;
}
