#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tiny_model.h"
#include "treerpo/model/qwen2.h"
#include "treerpo/model/safetensors.h"
#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::tiny_config;

void expect_same_weights(const Qwen2& a, const Qwen2& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
  }
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class RoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(RoundTrip, LoadSaveLoadIsBitExact) {
  TempDir first, second;
  Qwen2 original = Qwen2::random(tiny_config(GetParam()), 7, torch::kFloat32, torch::kCPU);
  original.save(first.str());
  Qwen2 loaded = Qwen2::load(first.str(), torch::kFloat32, torch::kCPU);
  expect_same_weights(original, loaded);
  loaded.save(second.str());
  EXPECT_EQ(file_bytes(first / "model.safetensors"), file_bytes(second / "model.safetensors"));
  expect_same_weights(original, Qwen2::load(second.str(), torch::kFloat32, torch::kCPU));
}

TEST_P(RoundTrip, ShardedEqualsUnsharded) {
  TempDir whole, sharded;
  Qwen2 model = Qwen2::random(tiny_config(GetParam()), 8, torch::kFloat32, torch::kCPU);
  model.save(whole.str());
  model.save(sharded.str(), /*max_shard_bytes=*/40000);
  EXPECT_FALSE(fs::exists(sharded / "model.safetensors"));
  nlohmann::json index =
      nlohmann::json::parse(std::ifstream(sharded / "model.safetensors.index.json"));
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items())
    shards.insert(file.get<std::string>());
  EXPECT_GT(shards.size(), 2u);
  char first_shard[64];
  std::snprintf(first_shard, sizeof(first_shard), "model-00001-of-%05zu.safetensors",
                shards.size());
  EXPECT_TRUE(shards.count(first_shard)) << *shards.begin();
  expect_same_weights(Qwen2::load(whole.str(), torch::kFloat32, torch::kCPU),
                      Qwen2::load(sharded.str(), torch::kFloat32, torch::kCPU));
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, RoundTrip, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Tied" : "Untied"; });

TEST(Checkpoint, TiedHeadIsStoredOnceAndReusesTheEmbedding) {
  TempDir dir;
  Qwen2::random(tiny_config(true), 1, torch::kFloat32, torch::kCPU).save(dir.str());
  auto file = SafetensorsFile::open(dir / "model.safetensors");
  EXPECT_FALSE(file.contains("lm_head.weight"));
  EXPECT_TRUE(file.contains("model.embed_tokens.weight"));
  Qwen2 model = Qwen2::load(dir.str(), torch::kFloat32, torch::kCPU);
  // Logits of the tied head are the final hidden state times the embedding: changing the embedding
  // row of token 5 changes only logit 5.
  torch::Tensor before = model.forward({1, 2, 3});
  {
    torch::NoGradGuard no_grad;
    model.named_parameters().front().second[5].add_(1.0);
  }
  torch::Tensor after = model.forward({1, 2, 3});
  torch::Tensor changed = (after[0] != before[0]).nonzero().view({-1});
  ASSERT_EQ(changed.numel(), 1);
  EXPECT_EQ(changed[0].item<int64_t>(), 5);
}

TEST(Checkpoint, UntiedHeadIsItsOwnTensor) {
  TempDir dir;
  Qwen2::random(tiny_config(false), 1, torch::kFloat32, torch::kCPU).save(dir.str());
  auto file = SafetensorsFile::open(dir / "model.safetensors");
  EXPECT_TRUE(file.contains("lm_head.weight"));
  EXPECT_FALSE(
      torch::equal(file.tensor("lm_head.weight"), file.tensor("model.embed_tokens.weight")));
}

TEST(Checkpoint, SavedFolderHasTransformersFiles) {
  TempDir dir;
  Qwen2::random(tiny_config(true), 1, torch::kBFloat16, torch::kCPU).save(dir.str());
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  EXPECT_EQ(config["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_TRUE(fs::exists(dir / "generation_config.json"));
  EXPECT_EQ(
      SafetensorsFile::open(dir / "model.safetensors").tensor("model.norm.weight").scalar_type(),
      torch::kBFloat16);
}

TEST(Checkpoint, SaveKeepsSourceConfigKeysAndTokenizerFiles) {
  TempDir source, copy;
  Qwen2::random(tiny_config(true), 1, torch::kFloat32, torch::kCPU).save(source.str());
  nlohmann::json config = nlohmann::json::parse(std::ifstream(source / "config.json"));
  config["eos_token_id"] = 151643;
  std::ofstream(source / "config.json") << config.dump();
  std::ofstream(source / "tokenizer.json") << R"({"model": {}})";
  Qwen2::load(source.str(), torch::kFloat32, torch::kCPU).save(copy.str());
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(copy / "config.json"))["eos_token_id"], 151643);
  EXPECT_EQ(file_bytes(copy / "tokenizer.json"), R"({"model": {}})");
}

// --- Bad checkpoints: each must throw bad_input naming the file (and the tensor where there is
// one).

// Splits a safetensors file into its JSON header and data, and writes them back (edited).
struct RawFile {
  nlohmann::json header;
  std::string data;
  explicit RawFile(const std::string& path) {
    std::string bytes = file_bytes(path);
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(bytes[i]);
    header = nlohmann::json::parse(bytes.substr(8, len));
    data = bytes.substr(8 + len);
  }
  void write(const std::string& path) const {
    std::string text = header.dump();
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
      out[i] = static_cast<char>((uint64_t(text.size()) >> (8 * i)) & 0xff);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << out << text << data;
  }
};

class BadCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    Qwen2::random(tiny_config(false), 3, torch::kFloat32, torch::kCPU).save(dir_.str());
  }
  std::string weights() const { return dir_ / "model.safetensors"; }
  // Loading must fail with bad_input whose message names every one of `parts`.
  void expect_load_error(const std::vector<std::string>& parts) {
    try {
      Qwen2::load(dir_.str(), torch::kFloat32, torch::kCPU);
      FAIL() << "loaded a bad checkpoint";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      for (const auto& part : parts) EXPECT_NE(what.find(part), std::string::npos) << what;
    }
  }
  TempDir dir_;
};

TEST_F(BadCheckpoint, TruncatedFile) {
  fs::resize_file(weights(), fs::file_size(weights()) - 100);
  // The last tensor in data order is the one cut short.
  RawFile raw(weights());
  std::string last;
  uint64_t last_end = 0;
  for (const auto& [name, info] : raw.header.items()) {
    if (name != "__metadata__" && info["data_offsets"][1].get<uint64_t>() > last_end) {
      last_end = info["data_offsets"][1].get<uint64_t>();
      last = name;
    }
  }
  expect_load_error({weights(), "tensor " + last});
}

TEST_F(BadCheckpoint, HeaderLongerThanFile) {
  std::string bytes = file_bytes(weights());
  bytes[6] = '\x01'; // header length += 2^48
  std::ofstream(weights(), std::ios::binary | std::ios::trunc) << bytes;
  expect_load_error({weights(), "header length"});
}

TEST_F(BadCheckpoint, OffsetsOutOfRange) {
  RawFile raw(weights());
  raw.header["model.norm.weight"]["data_offsets"] = {raw.data.size(), raw.data.size() + 256};
  raw.write(weights());
  expect_load_error({weights(), "tensor model.norm.weight", "out of range"});
}

TEST_F(BadCheckpoint, DtypeShapeMismatch) {
  RawFile raw(weights());
  raw.header["model.layers.1.mlp.up_proj.weight"]["dtype"] = "BF16";
  raw.write(weights());
  expect_load_error({weights(), "tensor model.layers.1.mlp.up_proj.weight", "bytes"});
}

TEST_F(BadCheckpoint, OverlappingTensors) {
  RawFile raw(weights());
  raw.header["model.norm.weight"]["data_offsets"] =
      raw.header["model.layers.0.input_layernorm.weight"]["data_offsets"];
  raw.write(weights());
  expect_load_error({weights(), "overlaps"});
}

TEST_F(BadCheckpoint, MissingTensor) {
  RawFile raw(weights());
  raw.header.erase("model.layers.0.self_attn.k_proj.bias");
  raw.write(weights());
  expect_load_error({weights(), "missing tensor", "model.layers.0.self_attn.k_proj.bias"});
}

TEST_F(BadCheckpoint, WrongShape) {
  RawFile raw(weights());
  raw.header["model.layers.0.self_attn.q_proj.weight"]["shape"] = {32, 128};
  raw.write(weights());
  expect_load_error({weights(), "tensor model.layers.0.self_attn.q_proj.weight", "[64, 64]"});
}

TEST_F(BadCheckpoint, MissingWeightsFile) {
  fs::remove(weights());
  expect_load_error({dir_.str(), "model.safetensors"});
}

// Found reading the parser for its fuzz target (tests/fuzz/safetensors.cpp): 2^62 x 4 float32
// elements is 2^66 bytes, which wrapped to 0 and matched empty offsets; reading it then asked
// LibTorch for an impossible tensor.
TEST_F(BadCheckpoint, ShapeWhoseByteCountOverflows) {
  RawFile raw(weights());
  raw.header["extra"] = {
      {"dtype", "F32"}, {"shape", {uint64_t{1} << 62, 4}}, {"data_offsets", {0, 0}}};
  raw.write(weights());
  expect_load_error({weights(), "tensor extra", "is too large"});
}

// Found reading the loader for its fuzz target (tests/fuzz/model_folder.cpp): the layer stack was
// built from config.json before any weight was looked at, so a huge num_hidden_layers exhausted
// memory.
TEST_F(BadCheckpoint, LayerCountBeyondTheWeightsIsRefusedBeforeAllocating) {
  auto config = nlohmann::json::parse(file_bytes(dir_ / "config.json"));
  config["num_hidden_layers"] = int64_t{1} << 40;
  std::ofstream(dir_ / "config.json", std::ios::trunc) << config.dump();
  expect_load_error({weights(), "config.json has 1099511627776 layers but the weights hold"});
}

// A type error inside a config key is bad input with its key, not an escaped JSON exception.
TEST_F(BadCheckpoint, SlidingWindowFlagThatIsNotABoolean) {
  auto config = nlohmann::json::parse(file_bytes(dir_ / "config.json"));
  config["use_sliding_window"] = "no";
  std::ofstream(dir_ / "config.json", std::ios::trunc) << config.dump();
  expect_load_error({"config.json: key \"use_sliding_window\"", "expected true or false"});
}

// The index names files of its own folder only.
TEST_F(BadCheckpoint, IndexEntryOutsideTheFolder) {
  nlohmann::json index = {{"weight_map", {{"model.norm.weight", "../model.safetensors"}}}};
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  expect_load_error({"model.safetensors.index.json: model.norm.weight", "not a file name"});
}

} // namespace
} // namespace treerpo::model

namespace treerpo::model {
namespace {

// The metadata of a safetensors header is read back as written; a non-object is bad input.
TEST(Safetensors, MetadataRoundTripsAndMustBeAnObject) {
  treerpo::testing::TempDir dir;
  const std::string path = dir / "t.safetensors";
  write_safetensors(path, {{"x", torch::ones({2})}}, {{"steps", "12"}});
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"steps", "12"}}));
  EXPECT_EQ(file.dtype("x"), torch::kFloat32);

  const std::string header = R"({"__metadata__":["pt"]})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes << header;
  try {
    SafetensorsFile::open(path);
    FAIL() << "opened a header whose metadata is a list";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("__metadata__ is not a JSON object"), std::string::npos)
        << e.what();
  }
}

// The built-in 1.5B shape is Qwen/Qwen2.5-Math-1.5B's published config.json (hidden 1536,
// intermediate 8960, 28 layers, 12 heads, 2 KV heads, vocab 151936, 4096 positions, rope_theta
// 10000, RMSNorm eps 1e-6, tied embeddings, bfloat16); another name is bad input.
TEST(BuiltinShape, QwenMath15bIsThePublishedConfig) {
  const Qwen2Config c = Qwen2Config::builtin("qwen2.5-math-1.5b", "--shape");
  EXPECT_EQ(c.hidden_size, 1536);
  EXPECT_EQ(c.intermediate_size, 8960);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim(), 128);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  try {
    Qwen2Config::builtin("qwen2.5-1.5b", "--shape");
    FAIL() << "accepted an unknown shape";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("unknown shape 'qwen2.5-1.5b'"), std::string::npos)
        << e.what();
  }
}

} // namespace
} // namespace treerpo::model
