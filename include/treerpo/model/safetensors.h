#pragma once
// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw bytes. Reading maps the file and validates the whole
// header up front (ranges in bounds and not overlapping, dtype x shape = byte length) so a bad
// download fails with one line naming the file and tensor, never with a crash halfway through
// loading.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace treerpo::model {

class SafetensorsFile {
public:
  // Maps and validates `path`; throws treerpo::bad_input naming the file (and tensor) on any
  // defect.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const; // sorted
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<int64_t> shape(const std::string& name) const;
  torch::Dtype dtype(const std::string& name) const;
  // The header's "__metadata__" string values (the format allows only strings; others are
  // skipped), e.g. {"format": "pt"}.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // An owned CPU copy of the tensor in its stored dtype (F32, F16 or BF16).
  torch::Tensor tensor(const std::string& name) const;

private:
  struct Entry {
    torch::Dtype dtype;
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0; // byte range within the data section
  };
  const Entry& entry(const std::string& name) const;

  std::string path_;
  std::shared_ptr<const void> mapping_; // unmaps when the last copy goes
  const char* data_ = nullptr;          // start of the data section
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device; F32, F16 or BF16) as one safetensors file with {"format": "pt"}
// plus `metadata` as its "__metadata__", the layout transformers and vLLM load. Tensors are copied
// to the host one at a time: the host never holds more than the largest of them.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

} // namespace treerpo::model
