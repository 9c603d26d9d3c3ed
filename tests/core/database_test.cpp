#include "support/catch.hpp"
#include "support/fake_database.hpp"

#include <kysera/infra/database.hpp>
#include <kysera/infra/detail/secrets.hpp>
#include <kysera/infra/detail/url.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace infra = kysera::infra;
using kysera::test::fake_database;
using kysera::test::minimal_database;

namespace {
struct not_a_database {
  void execute(std::string_view);
};
}  // namespace

TEST_CASE("the database concept asks only for execute and close", "[core]") {
  static_assert(infra::database<minimal_database>);
  static_assert(!infra::database<not_a_database>);
  static_assert(!infra::database<int>);
  static_assert(!infra::database_with_ping<minimal_database>);
  static_assert(infra::database_with_server_version<fake_database>);
  static_assert(!infra::database_with_transaction<minimal_database>);
}

TEST_CASE("ping falls back to SELECT 1 where the type has no ping", "[core]") {
  minimal_database db;
  infra::ping(db);
  CHECK(db.executes == 1);
  CHECK_FALSE(infra::try_cancel(db));
  CHECK_FALSE(infra::server_version(db).has_value());
  fake_database fake;
  CHECK(infra::try_cancel(fake));
  CHECK(fake.cancel_calls() == 1);
  CHECK(infra::server_version(fake) == std::optional<std::string>("fake 1.0"));
}

TEST_CASE("connection URLs are parsed with percent-decoding", "[core]") {
  auto u = infra::detail::parse_url("postgres://us%40er:p%3Ass@db.example:6543/app?sslmode=disable&x", "postgres");
  CHECK(u.scheme == "postgres");
  CHECK(u.user == "us@er");
  CHECK(u.password == "p:ss");
  CHECK(u.host == "db.example");
  CHECK(u.port == std::optional<std::uint16_t>(6543));
  CHECK(u.database == "app");
  CHECK(u.params.at("sslmode") == "disable");
  CHECK(u.params.at("x").empty());
  auto v6 = infra::detail::parse_url("mysql://[::1]:3306/db", "mysql");
  CHECK(v6.host == "::1");
  CHECK(v6.port == std::optional<std::uint16_t>(3306));
}

TEST_CASE("malformed URLs throw invalid_url without quoting the URL", "[core]") {
  for (const char* bad : {"no-scheme", "://x", "mysql://u:topsecret@h:99999/db", "mysql://u:topsecret@h:12x/db",
                          "mysql://u:topsecret@h/db%zz", "mysql://u:topsecret@[::1/db", "mysql://u:topsecret@h:/d"}) {
    try {
      (void)infra::detail::parse_url(bad, "mysql");
      FAIL("accepted " << bad);
    } catch (const infra::database_error& e) {
      CHECK(e.code() == infra::errc::invalid_url);
      CHECK(std::string(e.what()).find("topsecret") == std::string::npos);
    }
  }
}

TEST_CASE("redact replaces every occurrence of the secret", "[core]") {
  CHECK(infra::detail::redact("a pw b pw", "pw") == "a *** b ***");
  CHECK(infra::detail::redact("unchanged", "") == "unchanged");
}

TEST_CASE("redact masks overlapping secrets whatever their order", "[core][regression]") {
  using secrets = std::vector<std::string>;
  // The shorter secret first once left the tail of the longer one: "***pass".
  CHECK(infra::detail::redact("pw=secretpass", secrets{"secret", "secretpass"}) == "pw=***");
  CHECK(infra::detail::redact("pw=secretpass", secrets{"secretpass", "secret"}) == "pw=***");
  // Overlapping occurrences become one masked run.
  CHECK(infra::detail::redact("xabcdy", secrets{"abc", "bcd"}) == "x***y");
  CHECK(infra::detail::redact("aaaa", secrets{"aa"}) == "***");
  CHECK(infra::detail::redact("a b", secrets{"", "zz"}) == "a b");
}

TEST_CASE("redact leaves no secret and no part of one behind (property)", "[core]") {
  std::mt19937 rng(20261202);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  const std::string alphabet = "abc%'\\ =@:/?";  // few letters: secrets overlap and repeat often
  auto random_text = [&](std::size_t max_len) {
    std::string out(1 + pick(max_len), ' ');
    for (auto& c : out) c = alphabet[pick(alphabet.size())];
    return out;
  };
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> secrets;
    for (std::size_t i = 0, n = 1 + pick(4); i < n; ++i) secrets.push_back(random_text(6));
    // Text made of filler, secrets, and halves of secrets next to each other.
    std::string text;
    for (std::size_t i = 0, n = 1 + pick(6); i < n; ++i) {
      const std::string& s = secrets[pick(secrets.size())];
      switch (pick(4)) {
        case 0: text += random_text(4); break;
        case 1: text += s.substr(0, 1 + pick(s.size())); break;
        default: text += s; break;
      }
    }
    std::string masked = infra::detail::redact(text, secrets);
    auto reversed = secrets;
    std::reverse(reversed.begin(), reversed.end());
    CAPTURE(text, masked);
    CHECK(infra::detail::redact(text, reversed) == masked);
    for (const auto& s : secrets) {
      CAPTURE(s);
      CHECK(masked.find(s) == std::string::npos);
    }
    // Nothing but masked runs is removed: the text without any secret comes back unchanged.
    if (masked.find("***") == std::string::npos) CHECK(masked == text);
  }
}
