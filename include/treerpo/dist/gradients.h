#pragma once
// The data-parallel gradient: every rank's accumulated gradients summed over ranks, in buckets.
#include <cstdint>
#include <vector>

#include "treerpo/dist/world.h"

namespace treerpo::dist {

// DDP's default bucket (bucket_cap_mb = 25).
constexpr int64_t kBucketBytes = 25 << 20;

// Replaces each parameter's gradient by its sum over the ranks of `world` (a parameter without a
// gradient on this rank contributes zeros and gets one). Parameters are packed in order into
// flat buckets of at most `bucket_bytes` (one dtype a bucket), all issued before any is awaited.
// Returns the bytes this rank sent into the collectives (0 without a group).
int64_t sum_gradients(World& world, std::vector<at::Tensor>& params,
                      int64_t bucket_bytes = kBucketBytes);

} // namespace treerpo::dist
