#pragma once
/// \file
/// Branch hints for the pool's hot path, shared by the pool's headers (so, unlike the rest of
/// the library's macros, they stay defined after the pool's headers end).

#if defined(__GNUC__) || defined(__clang__)
#define KYSERA_INFRA_POOL_NOINLINE [[gnu::noinline]]
#define KYSERA_INFRA_POOL_LIKELY(x) __builtin_expect(!!(x), 1)
#define KYSERA_INFRA_POOL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KYSERA_INFRA_POOL_NOINLINE
#define KYSERA_INFRA_POOL_LIKELY(x) (x)
#define KYSERA_INFRA_POOL_UNLIKELY(x) (x)
#endif
