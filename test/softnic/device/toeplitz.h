// The Toeplitz hash of Microsoft's RSS specification, as NICs compute it.
//
// The hash is linear in its input: each input byte at position i contributes
// a value that depends only on (i, byte, key). The hasher tabulates those
// contributions once per key, so hashing an IPv4 4-tuple is 12 lookups
// instead of 96 shift-and-xor steps. Because of the linearity, inputs that are
// not contiguous in a frame (addresses, then ports) are hashed piecewise at
// their positions and xor-ed.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_TOEPLITZ_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_TOEPLITZ_H_

#include <cstddef>
#include <cstdint>

#include "test/softnic/simnic_abi.h"

namespace iovtee::softnic {

class ToeplitzHasher {
 public:
  // The longest input: IPv6 source and destination addresses and two ports.
  static constexpr size_t kMaxInput = 36;

  // Tabulates `key` (kRssKeySize bytes). Costs about 10 us; call only when
  // the key changes.
  void SetKey(const uint8_t* key);

  // The contribution of data[0, len) placed at input byte position `pos`;
  // requires pos + len <= kMaxInput. Hash(whole) == xor of the pieces.
  uint32_t HashAt(const uint8_t* data, size_t len, size_t pos) const {
    uint32_t h = 0;
    for (size_t i = 0; i < len; ++i) h ^= table_[pos + i][data[i]];
    return h;
  }

  // Bit-serial definition, for tests and for checking the table.
  static uint32_t Reference(const uint8_t* key, size_t key_len, const uint8_t* data, size_t len);

 private:
  uint32_t table_[kMaxInput][256] = {};
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_TOEPLITZ_H_
