#pragma once
// Whether a JSON value read from a user's file is an integer of int64 range. nlohmann parses a
// number beyond int64/uint64 (or with a fraction) as a double, and get<int64_t> of it is then
// undefined behaviour (or a silent truncation): fuzzing found 5.6e111 in a results file and
// 4.4e51 in trainer_state.json. Check with this before get<int64_t>.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace treerpo {

inline bool is_int64(const nlohmann::json& v) {
  return v.is_number_integer() &&
         !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX));
}

} // namespace treerpo
