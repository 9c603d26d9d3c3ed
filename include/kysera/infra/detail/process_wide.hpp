#pragma once
/// \file
/// `KYSERA_INFRA_PROCESS_WIDE`: marks the functions that hold a process-wide singleton in a
/// function-local static (the error category, the default logger slot, the signal slot, the
/// watchdog, the probe executor) with default ELF visibility. Shared libraries built with
/// `-fvisibility=hidden` (and `-fvisibility-inlines-hidden`) would otherwise each keep their own
/// copy; with the attribute the dynamic linker binds every library to one copy, as it does for
/// libraries built with default visibility.
///
/// It cannot help a library that hides everything behind a version script (`local: *;`), uses
/// `-Bsymbolic`, or is a Windows DLL: such a library keeps its own copies. The error checks then
/// still work (error.hpp recognises our category by name, not by address); the other singletons
/// are duplicated (see docs/cmake-options.md, "Shared libraries"). Define the macro empty before
/// the first include to opt out.

#ifndef KYSERA_INFRA_PROCESS_WIDE
#if defined(__GNUC__) || defined(__clang__)
#define KYSERA_INFRA_PROCESS_WIDE [[gnu::visibility("default")]]
#else
#define KYSERA_INFRA_PROCESS_WIDE
#endif
#endif
