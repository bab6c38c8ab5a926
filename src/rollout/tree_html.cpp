#include "treerpo/rollout/tree_html.h"

#include <cstdio>

namespace treerpo::rollout {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

// Reward 0 -> red, 1 -> green, through pale yellow.
std::string colour(double reward) {
  const double r = reward < 0 ? 0 : reward > 1 ? 1 : reward;
  char buf[32];
  std::snprintf(buf, sizeof buf, "hsl(%d,70%%,85%%)", static_cast<int>(120 * r));
  return buf;
}

void render(const Tree& t, int32_t id, std::string& out) {
  const Node& n = t.nodes[id];
  char head[160];
  std::snprintf(head, sizeof head, "#%d %s · %zu tok · r=%.2f · A=%+.2f%s", n.id,
                origin_name(n.origin), n.token_ids.size(), n.reward, n.advantage,
                n.leaf ? (n.correct.value_or(false) ? " · correct" : " · wrong") : "");
  out += "<li><div class=\"node\" style=\"background:" + colour(n.reward) +
         "\"><div class=\"head\">" + escape(head) + "</div><pre>" +
         escape(id == 0 ? t.prompt : n.text) + "</pre></div>";
  if (!n.children.empty()) {
    char edge[64];
    if (n.split_entropy)
      std::snprintf(edge, sizeof edge, "split H=%.3f", *n.split_entropy);
    else
      std::snprintf(edge, sizeof edge, "split");
    out += "<div class=\"edge\">" + std::string(edge) + "</div><ul>";
    for (int32_t c : n.children) render(t, c, out);
    out += "</ul>";
  }
  out += "</li>";
}

} // namespace

std::string tree_to_html(const Tree& tree) {
  std::string out =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>treerpo tree</title><style>"
      "body{font:13px sans-serif}ul{list-style:none;padding-left:24px;border-left:1px dashed #999}"
      ".node{border:1px solid #888;border-radius:4px;margin:4px 0;padding:4px;max-width:900px}"
      ".head{font-weight:bold}.edge{color:#555;font-style:italic;margin-left:12px}"
      "pre{white-space:pre-wrap;margin:2px 0}</style></head><body><h3>" +
      escape("gold: " + tree.gold) + "</h3><ul>";
  if (!tree.nodes.empty()) render(tree, 0, out);
  return out + "</ul></body></html>\n";
}

} // namespace treerpo::rollout
