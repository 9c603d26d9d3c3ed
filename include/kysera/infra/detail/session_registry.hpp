#pragma once
/// \file
/// `detail::session_registry`: the open adapter connections of the process, each tagged with the
/// pool that made it (or none), so that closing a pool at its deadline can cut the sessions still
/// running a statement (`connection_pool::close_for`, and so graceful shutdown). Connections
/// register when they are made and leave when they close; nothing happens per statement.

#include <mutex>
#include <string>
#include <vector>

#include "process_wide.hpp"

namespace kysera::infra::detail {

/// Thread-safe. Never destroyed (connections may close during static destruction).
class session_registry {
 public:
  /// How far a cut goes: first the backend's cancel (which may need a moment to read what it
  /// needs from the session), then the socket shut down.
  enum class cut_stage { interrupt, shut_down };

  /// One registered connection; owned by it. `cut(session, stage, what)` acts on the statement
  /// the session runs (see `cut_stage`) and names it in `what`; it returns false (and leaves
  /// `what` alone) when nothing runs. It runs under the registry's lock and must not block.
  struct entry {
    const void* owner = nullptr;
    void* session = nullptr;
    bool (*cut)(void* session, cut_stage stage, std::string& what) noexcept = nullptr;
    entry* prev = nullptr;
    entry* next = nullptr;
    bool linked = false;
  };

  KYSERA_INFRA_PROCESS_WIDE static session_registry& instance() {
    static session_registry* const registry = new session_registry();
    return *registry;
  }

  /// The owner that connections made on this thread now register with (the pool whose factory
  /// runs), null for none.
  static const void*& current_owner() noexcept {
    thread_local const void* owner = nullptr;
    return owner;
  }

  void add(entry& e) noexcept {
    std::lock_guard lock(mutex_);
    if (e.linked) return;
    e.prev = nullptr;
    e.next = head_;
    if (head_ != nullptr) head_->prev = &e;
    head_ = &e;
    e.linked = true;
  }

  /// Idempotent; once it returns, `e.cut` is not running and will not run.
  void remove(entry& e) noexcept {
    std::lock_guard lock(mutex_);
    if (!e.linked) return;
    if (e.prev != nullptr) e.prev->next = e.next;
    if (e.next != nullptr) e.next->prev = e.prev;
    if (head_ == &e) head_ = e.next;
    e.linked = false;
  }

  /// Cuts (to `stage`) every session of `owner` that runs a statement now; returns what each
  /// one was.
  std::vector<std::string> cut_owned_by(const void* owner, cut_stage stage) {
    std::vector<std::string> cut;
    std::lock_guard lock(mutex_);
    for (entry* e = head_; e != nullptr; e = e->next) {
      if (e->owner != owner) continue;
      std::string what;
      if (e->cut(e->session, stage, what)) cut.push_back(std::move(what));
    }
    return cut;
  }

 private:
  session_registry() = default;
  std::mutex mutex_;
  entry* head_ = nullptr;
};

/// Not thread-safe (one per thread, block-scoped): connections made on this thread while it
/// lives register with `owner`.
class session_owner_scope {
 public:
  explicit session_owner_scope(const void* owner) noexcept : previous_(session_registry::current_owner()) {
    session_registry::current_owner() = owner;
  }
  ~session_owner_scope() { session_registry::current_owner() = previous_; }
  session_owner_scope(const session_owner_scope&) = delete;
  session_owner_scope& operator=(const session_owner_scope&) = delete;

 private:
  const void* previous_;
};

}  // namespace kysera::infra::detail
