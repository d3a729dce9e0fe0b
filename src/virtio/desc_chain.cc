#include "src/virtio/desc_chain.h"

namespace iovtee::virtio {

const char* ChainErrorName(ChainError e) {
  switch (e) {
    case ChainError::kNone:
      return "none";
    case ChainError::kHeadOutOfRange:
      return "head_out_of_range";
    case ChainError::kNextOutOfRange:
      return "next_out_of_range";
    case ChainError::kChainTooLong:
      return "chain_too_long";
    case ChainError::kNestedIndirect:
      return "nested_indirect";
    case ChainError::kIndirectWithNext:
      return "indirect_with_next";
    case ChainError::kIndirectBadLength:
      return "indirect_bad_length";
    case ChainError::kIndirectNotAllowed:
      return "indirect_not_negotiated";
    case ChainError::kIndirectOutOfMemory:
      return "indirect_out_of_memory";
    case ChainError::kWrongDirection:
      return "wrong_direction";
    case ChainError::kLengthOverflow:
      return "length_overflow";
    case ChainError::kAddressOutOfMemory:
      return "address_out_of_memory";
    case ChainError::kTooManySegments:
      return "too_many_segments";
    case ChainError::kAvailIndexJump:
      return "avail_index_jump";
    case ChainError::kDuplicateId:
      return "duplicate_id";
    case ChainError::kRingOverrun:
      return "ring_overrun";
    case ChainError::kCount:
      break;
  }
  return "unknown";
}

}  // namespace iovtee::virtio
