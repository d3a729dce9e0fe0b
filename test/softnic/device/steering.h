// Receive steering: which Rx queue a frame goes to, and whether the port
// accepts it at all.
//
// Policy, in order:
//  1. Frames shorter than an Ethernet header are dropped (runt).
//  2. Flow rules (first valid match wins): dst MAC equal, and when the rule
//     has match_vlan, an outer 802.1Q/802.1ad tag with that VLAN id. A
//     matching rule both accepts the frame (like an i40e MAC/VLAN filter,
//     whatever the port's MAC) and names its queue.
//  3. Otherwise the frame is accepted only when promiscuous, or its dst MAC is
//     the port's, or it is multicast/broadcast (I/G bit set). Else dropped
//     ("filtered").
//  4. Queue: RSS when enabled: reta[hash % kRetaSize], hashing IPv4/IPv6
//     source and destination addresses, plus TCP/UDP ports when the frame is
//     TCP or UDP and not an IP fragment; frames that are not IP get queue 0.
//     Without RSS, queue 0.
// When RSS is enabled every IP frame carries its hash (kRxRssValid), also
// when a flow rule steered it.
//
// The tables come from the register page under seqlocks; Refresh() copies
// them once per burst (only when a sequence number moved), so classification
// reads private memory only.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_STEERING_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_STEERING_H_

#include <cstdint>
#include <cstring>

#include "test/softnic/device/toeplitz.h"
#include "test/softnic/simnic_abi.h"

namespace iovtee::softnic {

enum class SteerVerdict : uint8_t { kAccept, kRunt, kFiltered };

struct SteerResult {
  SteerVerdict verdict;
  bool hash_valid;
  uint16_t queue;
  uint32_t hash;
};

class Steering {
 public:
  // Forgets every snapshot (new driver).
  void Reset();

  // Brings the private copies up to date with `regs`. A table whose seqlock
  // stays odd or keeps moving for a bounded number of tries keeps its
  // previous copy until the next burst (a writer that died mid-update cannot
  // stall the device). Cost when nothing changed: a few loads.
  void Refresh(const simnic::RegisterPage* regs);

  SteerResult Classify(const uint8_t* frame, uint32_t len) const;

  bool rss_enabled() const { return rss_enabled_; }
  int num_rules() const { return num_rules_; }
  uint64_t stale_reads() const { return stale_reads_; }

 private:
  struct Rule {
    uint64_t mac;  // dst MAC in the low 48 bits, frame byte order
    bool match_vlan;
    uint16_t vlan_id;
    uint16_t queue;
  };

  bool ReadRss(const simnic::RegisterPage* regs, uint32_t seq);
  bool ReadRules(const simnic::RegisterPage* regs, uint32_t seq);
  uint32_t RssHash(const uint8_t* frame, uint32_t len, uint32_t l3, uint16_t ethertype,
                   bool* valid) const;

  // Port state read each burst (single words, no seqlock needed).
  uint64_t port_mac_ = 0;
  bool promiscuous_ = false;

  bool have_rss_ = false;
  uint32_t rss_seq_ = 0;
  bool rss_enabled_ = false;
  uint8_t rss_key_[simnic::kRssKeySize] = {};
  uint16_t reta_[simnic::kRetaSize] = {};
  ToeplitzHasher hasher_;

  bool have_rules_ = false;
  uint32_t flow_seq_ = 0;
  int num_rules_ = 0;
  Rule rules_[simnic::kMaxFlowRules] = {};

  uint64_t stale_reads_ = 0;  // bursts that ran on an older table
};

// Reads a 6-byte MAC into the low 48 bits of an integer (byte order kept).
inline uint64_t LoadMac(const uint8_t* p) {
  uint32_t lo;
  uint16_t hi;
  memcpy(&lo, p, 4);
  memcpy(&hi, p + 4, 2);
  return uint64_t{lo} | (uint64_t{hi} << 32);
}

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_STEERING_H_
