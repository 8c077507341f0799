#include "exec/saga_id.h"

#include <array>

namespace usher {

SagaIdGenerator::SagaIdGenerator(uint64_t seed) : rng_(seed) {}

std::string SagaIdGenerator::next(int64_t now_us) {
  int64_t ms = now_us / 1000;
  if (ms <= last_ms_) {
    ms = last_ms_;
    if (++counter_ > 0x0fff) {  // counter spent: borrow the next millisecond
      ++ms;
      counter_ = 0;
    }
  } else {
    counter_ = static_cast<uint16_t>(rng_() & 0x01ff);  // leave headroom for increments
  }
  last_ms_ = ms;

  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(ms) >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((counter_ >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(counter_ & 0xff);
  uint64_t r = rng_();
  for (int i = 8; i < 16; ++i) b[i] = static_cast<uint8_t>(r >> (8 * (i - 8)));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // RFC 9562 variant

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0f]);
  }
  return out;
}

}  // namespace usher
