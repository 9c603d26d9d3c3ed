#pragma once
// Catch2 2.13 (Debian) and Catch2 3 (vcpkg, upstream) behind one include.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define KYSERA_CATCH3 1
#else
#include <catch2/catch.hpp>
#endif
