// The ticketing benchmark's step semantics (docs/../docs/performance.md), shared by
// the HTTP step service, the in-process handlers of `local` mode, the Kafka
// payments service and the driver's own no-engine `baseline`, so every mode
// answers exactly the same and is checked against the same expected counts.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace usher::bench {

// The six step paths, in the order /stats lists them.
enum class Path { kReserve, kReserveCancel, kPay, kPayRefund, kConfirm, kNotify };
inline constexpr size_t kPathCount = 6;
inline constexpr std::array<std::string_view, kPathCount> kPathNames = {
    "/reserve", "/reserve/cancel", "/pay", "/pay/refund", "/confirm", "/notify"};

inline bool parse_path(std::string_view target, Path& out) {
  for (size_t i = 0; i < kPathCount; ++i) {
    if (target == kPathNames[i]) {
      out = static_cast<Path>(i);
      return true;
    }
  }
  return false;
}

// Seat n is declined at pay when n % 10 == 0, so one saga in ten compensates.
inline bool declined(int64_t seat) { return seat % 10 == 0; }

// One answer: HTTP status and JSON body.
struct Answer {
  int status = 200;
  std::string body;
};

inline Answer answer(Path path, std::string_view saga_id, int64_t seat) {
  switch (path) {
    case Path::kReserve: return {200, "{\"reservationId\":\"r-" + std::string(saga_id) + "\"}"};
    case Path::kPay:
      if (declined(seat)) return {422, "{\"error\":\"card declined\"}"};
      return {200, "{\"paymentId\":\"p-" + std::string(saga_id) + "\"}"};
    default: return {200, "{}"};
  }
}

// Call counts per path; safe to bump from any thread.
struct Counts {
  std::array<std::atomic<uint64_t>, kPathCount> calls{};
  void bump(Path p) { calls[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t get(Path p) const { return calls[static_cast<size_t>(p)].load(std::memory_order_relaxed); }
  void reset() {
    for (auto& c : calls) c.store(0, std::memory_order_relaxed);
  }
  // {"/reserve": 10, ...}
  std::string to_json() const {
    std::string out = "{";
    for (size_t i = 0; i < kPathCount; ++i) {
      if (i) out += ',';
      out += '"';
      out += kPathNames[i];
      out += "\":";
      out += std::to_string(calls[i].load(std::memory_order_relaxed));
    }
    return out + "}";
  }
};

// What N sagas with seats 1..N must have called (docs/performance.md): reserve N,
// pay N, reserve/cancel N/10, confirm and notify 9N/10, pay/refund 0.
inline std::array<uint64_t, kPathCount> expected_counts(uint64_t n) {
  uint64_t declined_sagas = n / 10;
  return {n, declined_sagas, n, 0, n - declined_sagas, n - declined_sagas};
}

}  // namespace usher::bench
