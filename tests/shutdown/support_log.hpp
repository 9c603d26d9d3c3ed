#pragma once
// A logger for the shutdown tests that keeps every line, and lets a test wait for one to appear.

#include <kysera/infra/logger.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kysera::test {

class log_capture final : public infra::logger {
 public:
  log_capture() { set_level(infra::log_level::trace); }  // keep debug lines too
  /// Lines as "<level>: <message>".
  std::vector<std::string> lines() const {
    std::lock_guard lock(lines_mutex_);
    return lines_;
  }

  bool contains(std::string_view text) const {
    std::lock_guard lock(lines_mutex_);
    return find_locked(text);
  }

  /// Waits until a line containing `text` was logged; false at the deadline.
  bool wait_for(std::string_view text,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(lines_mutex_);
    return cv_.wait_for(lock, timeout, [&] { return find_locked(text); });
  }

  /// Index of the first line containing `text`, or -1.
  int index_of(std::string_view text) const {
    std::lock_guard lock(lines_mutex_);
    for (std::size_t i = 0; i < lines_.size(); ++i) {
      if (lines_[i].find(text) != std::string::npos) return static_cast<int>(i);
    }
    return -1;
  }

 protected:
  void write(infra::log_level level, std::string_view message) override {
    {
      std::lock_guard lock(lines_mutex_);
      lines_.push_back(std::string(infra::to_string(level)) + ": " + std::string(message));
    }
    cv_.notify_all();
  }

 private:
  bool find_locked(std::string_view text) const {
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  mutable std::mutex lines_mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

}  // namespace kysera::test
