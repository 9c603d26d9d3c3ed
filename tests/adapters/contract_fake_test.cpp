// The adapter contract suite over the fake backend (an in-memory driver over the adapter
// skeleton): a unit test, no server needed. The same tests run over the real backends in
// contract_it.cpp.

#include "fake_traits.hpp"

static_assert(!fake_backend::can_kill_session);

#define KYSERA_CONTRACT_ALL_BACKENDS fake_backend
#include "contract_suite.hpp"
