#pragma once
/// \file
/// Asymmetric fences: a cheap fence for a hot path paired with an expensive one for a rare path.
/// The only header of the library that includes <sys/syscall.h> (for membarrier(2)).
///
/// Two threads that each write their own word and then read the other's (a Dekker pair: the pool
/// returning a connection against a caller queueing or the pool closing) need a full fence on
/// both sides. On Linux the rare side can pay for both with membarrier(PRIVATE_EXPEDITED), which
/// runs a full fence on every thread of the process, so the hot side needs only a compiler
/// barrier. Elsewhere, and under ThreadSanitizer (which cannot see membarrier), both sides use
/// sequentially consistent operations. Usage:
///
///     enable_asymmetric_fences();                      // once, before either side runs
///     // hot:  store(mine, release); if (light_fences_enabled()) atomic_signal_fence(seq_cst);
///     //       else use seq_cst for the store and the load that follows; load(theirs)
///     // rare: store(mine, seq_cst); heavy_fence(); load(theirs)

#include <atomic>

#if defined(__SANITIZE_THREAD__)
#define KYSERA_INFRA_FENCE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KYSERA_INFRA_FENCE_TSAN 1
#endif
#endif

#if defined(__linux__) && !defined(KYSERA_INFRA_FENCE_TSAN)
#include <sys/syscall.h>
#include <unistd.h>
#if defined(SYS_membarrier)
#define KYSERA_INFRA_FENCE_MEMBARRIER 1
#endif
#endif

namespace kysera::infra::detail {

#if defined(KYSERA_INFRA_FENCE_MEMBARRIER)
// The membarrier(2) commands we use; values fixed by the kernel ABI (<linux/membarrier.h>).
inline constexpr int membarrier_query = 0;
inline constexpr int membarrier_private_expedited = 1 << 3;
inline constexpr int membarrier_register_private_expedited = 1 << 4;
#endif

/// Thread-safe (one process-wide atomic). True once `enable_asymmetric_fences()` succeeded: the
/// hot side may then use a compiler barrier where it would otherwise need seq_cst.
inline std::atomic<bool>& light_fences_enabled() noexcept {
  static std::atomic<bool> enabled{false};
  return enabled;
}

/// Thread-safe; registers the process for expedited membarrier once. True when the rare side may
/// use it (and so the hot side may use light fences).
inline bool enable_asymmetric_fences() noexcept {
#if defined(KYSERA_INFRA_FENCE_MEMBARRIER)
  static const bool ok = [] {
    long commands = ::syscall(SYS_membarrier, membarrier_query, 0, 0);
    if (commands < 0 || !(commands & membarrier_private_expedited)) return false;
    if (::syscall(SYS_membarrier, membarrier_register_private_expedited, 0, 0) != 0) return false;
    light_fences_enabled().store(true, std::memory_order_release);
    return true;
  }();
  return ok;
#else
  return false;
#endif
}

/// Thread-safe. The rare side, after its own seq_cst write: makes every other thread's earlier
/// writes visible to it. Does nothing where light fences are off (both sides use seq_cst then).
inline void heavy_fence() noexcept {
#if defined(KYSERA_INFRA_FENCE_MEMBARRIER)
  if (enable_asymmetric_fences()) ::syscall(SYS_membarrier, membarrier_private_expedited, 0, 0);
#endif
}

}  // namespace kysera::infra::detail

#undef KYSERA_INFRA_FENCE_MEMBARRIER
#undef KYSERA_INFRA_FENCE_TSAN
