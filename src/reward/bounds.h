#pragma once
// The bounds that keep every check cheap on any input (issue 5: no input may take more than about a
// millisecond). Past them the checker falls back to exact text comparison instead of doing more
// work.
#include <cstddef>

namespace treerpo::reward {

// Longest answer that is normalised and compared mathematically; longer ones compare verbatim.
constexpr std::size_t kMaxAnswerChars = 600;
// Deepest nesting the expression parser follows (brackets, fractions, powers, function calls).
constexpr int kMaxParseDepth = 48;
// Most nodes one parsed expression may hold.
constexpr std::size_t kMaxExpressionNodes = 1024;
// Most distinct variables an expression may use.
constexpr std::size_t kMaxVariables = 8;
// Most elements compared in a tuple, set, list or matrix.
constexpr std::size_t kMaxElements = 64;
// Most element comparisons (each may parse and evaluate) one answers_equal call makes; past it the
// answers count as different. Identical items are paired before this budget is touched.
constexpr int kMaxComparisons = 400;
// Deepest recursion of answers_equal into elements of tuples, sets and matrices.
constexpr int kMaxStructureDepth = 4;

} // namespace treerpo::reward
