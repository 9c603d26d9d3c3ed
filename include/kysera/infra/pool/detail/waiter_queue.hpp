#pragma once
/// \file
/// The FIFO of callers blocked in `acquire`: an intrusive list of waiters that live on their own
/// threads' stacks, so queueing allocates nothing.

#include <condition_variable>
#include <cstddef>

namespace kysera::infra::pool::detail {

/// Not thread-safe: a caller blocked in `acquire`, linked into a `waiter_queue` and read and
/// written only under the pool's mutex. The caller sleeps on `cv` until `done`.
struct waiter {
  waiter* prev = nullptr;
  waiter* next = nullptr;
  std::size_t granted = 0;  // index of the slot handed to this caller (when done and not closed)
  bool create = false;      // `granted` is reserved (creating): open a connection into it
  bool closed = false;      // the pool closed while this caller waited
  bool throttled = false;   // it would connect, but a connect backoff window opened
  bool done = false;
  std::condition_variable cv;
};

/// Not thread-safe (the pool's mutex guards it): waiters in arrival order, served first come,
/// first served; any waiter may also leave early (timeout).
class waiter_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  /// The longest-waiting caller; the queue must not be empty.
  waiter& front() const noexcept { return *head_; }

  void push_back(waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) {
      tail_->next = &w;
    } else {
      head_ = &w;
    }
    tail_ = &w;
    ++size_;
  }

  /// Takes `w`, which must be queued, out of the queue.
  void unlink(waiter& w) noexcept {
    if (w.prev) {
      w.prev->next = w.next;
    } else {
      head_ = w.next;
    }
    if (w.next) {
      w.next->prev = w.prev;
    } else {
      tail_ = w.prev;
    }
    w.prev = w.next = nullptr;
    --size_;
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace kysera::infra::pool::detail
