#pragma once
// The tree viewer of a run: RUN_DIR/trees/ holds, per logged step N, step-N.jsonl (one tree per
// line, rollout/tree_json.h) and step-N.js (the same lines as a script that hands them to the
// page), and one index.html, the viewer itself (src/rollout/viewer/index.html) with the list of
// steps. The page loads a step's step-N.js with a <script> element when the step is selected: a
// browser refuses fetch() of file:// URLs but runs scripts beside the page, so opening index.html
// alone works from file:// with no server, and the page stays small however many steps are logged
// (each rewrite touches index.html and one step's files, not all the data).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "treerpo/rollout/tree.h"
#include "treerpo/tokenizer/tokenizer.h"

namespace treerpo::rollout {

// Writes trees_dir/step-N.jsonl and step-N.js for these trees, then rewrites index.html.
void write_logged_step(const std::filesystem::path& trees_dir, int64_t step,
                       const std::vector<Tree>& trees, const tokenizer::Tokenizer& tok);
// The same from trees already written as lines (tree_to_json(...).dump(), one a tree), as the
// ranks of a data-parallel job hand theirs to rank 0.
void write_logged_step(const std::filesystem::path& trees_dir, int64_t step,
                       const std::vector<std::string>& lines);

// step-N.js from step-N.jsonl (so a step whose script is missing or stale can be made again).
void write_step_script(const std::filesystem::path& trees_dir, int64_t step);

// Rewrites trees_dir/index.html listing every step-N.jsonl there; returns its path.
std::filesystem::path write_viewer_index(const std::filesystem::path& trees_dir);

// The steps with a step-N.jsonl in trees_dir, ascending.
std::vector<int64_t> logged_steps(const std::filesystem::path& trees_dir);

} // namespace treerpo::rollout
