// How the C ABI (include/iovtee/iovtee.h) reports an absl::Status: as a
// positive errno value (the C functions return its negation).
#ifndef IOVTEE_SRC_CAPI_STATUS_ERRNO_H_
#define IOVTEE_SRC_CAPI_STATUS_ERRNO_H_

#include "absl/status/status.h"

namespace iovtee::capi {

// 0 for kOk; otherwise the errno that iovtee.h documents for the code.
// FailedPrecondition is ENOTSUP: the library uses it for a guest or NIC it
// cannot serve; the one "busy" case (a guest attached already) is told
// apart by iovtee_mapping_attach_guest itself.
int ErrnoFromStatus(absl::StatusCode code);

}  // namespace iovtee::capi

#endif  // IOVTEE_SRC_CAPI_STATUS_ERRNO_H_
