#pragma once
// Which problem the i-th draw of a run is: epoch after epoch over the data, each epoch in an order
// drawn from (seed, epoch). Stateless in the draw index, so a resumed run continues exactly where
// it stopped.
#include <cstdint>
#include <numeric>
#include <vector>

#include "treerpo/util/rng.h"

namespace treerpo::train {

class DataOrder {
public:
  DataOrder(int64_t size, uint64_t seed, bool shuffle)
      : size_(size), seed_(seed), shuffle_(shuffle) {}

  int64_t at(int64_t draw) {
    int64_t epoch = draw / size_;
    if (epoch != epoch_) {
      epoch_ = epoch;
      order_.resize(static_cast<size_t>(size_));
      if (shuffle_) {
        order_ = permutation(size_, derive_seed(seed_, static_cast<uint64_t>(epoch)));
      } else {
        std::iota(order_.begin(), order_.end(), 0);
      }
    }
    return order_[static_cast<size_t>(draw % size_)];
  }

private:
  int64_t size_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

} // namespace treerpo::train
