#pragma once
// The viewer page, src/rollout/viewer/index.html, embedded at build time (viewer_page.cpp.in).

namespace treerpo::rollout {

extern const char* const kViewerPage;

} // namespace treerpo::rollout
