#include "treerpo/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "treerpo/util/error.h"

namespace treerpo::model {
namespace {

struct DtypeName {
  const char* name;
  torch::Dtype dtype;
};
constexpr DtypeName kDtypes[] = {
    {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}};

std::string where(const std::string& path, const std::string& tensor) {
  return path + ": tensor " + tensor;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Maps the whole file read-only; the returned pointer unmaps it when released.
std::shared_ptr<const void> map_file(const std::string& path, size_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    throw bad_input("cannot open safetensors file", path,
                    "check that the model folder is complete");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw bad_input("cannot stat safetensors file", path);
  }
  size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw bad_input("empty safetensors file", path, "re-download the checkpoint");
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) throw runtime_failure("cannot mmap safetensors file", path);
  return std::shared_ptr<const void>(
      addr, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
}

} // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const std::string hint =
      "the file is damaged or truncated; re-download or re-save the checkpoint";
  SafetensorsFile file;
  file.path_ = path;
  size_t size = 0;
  file.mapping_ = map_file(path, size);
  const auto* bytes = static_cast<const unsigned char*>(file.mapping_.get());
  if (size < 8) throw bad_input("file shorter than the 8-byte header length", path, hint);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8) {
    throw bad_input("header length " + std::to_string(header_len) + " exceeds the file size " +
                        std::to_string(size),
                    path, hint);
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes) + 8,
                                   reinterpret_cast<const char*>(bytes) + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw bad_input(std::string("header is not valid JSON (") + e.what() + ")", path, hint);
  }
  if (!header.is_object()) throw bad_input("header is not a JSON object", path, hint);
  file.data_ = reinterpret_cast<const char*>(bytes) + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw bad_input("__metadata__ is not a JSON object", path, hint);
      for (const auto& [key, value] : info.items()) {
        if (value.is_string()) file.metadata_.emplace(key, value.get<std::string>());
      }
      continue;
    }
    const std::string at = where(path, name);
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets")) {
      throw bad_input("entry lacks dtype, shape or data_offsets", at, hint);
    }
    Entry e;
    // A named copy: C++17 lambdas cannot capture structured bindings (clang refuses, gcc allows).
    const nlohmann::json stored_dtype = info["dtype"];
    const auto* dtype = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const auto& d) {
      return stored_dtype.is_string() && stored_dtype.get<std::string>() == d.name;
    });
    if (dtype == std::end(kDtypes)) {
      throw bad_input("unsupported dtype " + info["dtype"].dump(), at,
                      "store the weights as F32, F16 or BF16");
    }
    e.dtype = dtype->dtype;
    const auto& shape = info["shape"];
    const auto& offsets = info["data_offsets"];
    if (!shape.is_array() || !offsets.is_array() || offsets.size() != 2) {
      throw bad_input("malformed shape or data_offsets", at, hint);
    }
    // The byte count must not wrap around: a shape whose size overflows could otherwise match
    // small offsets and then ask for an impossible allocation.
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw bad_input("malformed shape " + shape.dump(), at, hint);
      const uint64_t dim = d.get<uint64_t>();
      overflow |= dim > static_cast<uint64_t>(INT64_MAX) ||
                  (dim != 0 && numel > static_cast<uint64_t>(INT64_MAX) / 8 / dim);
      if (!overflow) numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (overflow) throw bad_input("shape " + shape.dump() + " is too large", at, hint);
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      throw bad_input("malformed data_offsets " + offsets.dump(), at, hint);
    }
    e.begin = offsets[0].get<size_t>();
    e.end = offsets[1].get<size_t>();
    if (e.begin > e.end || e.end > data_size) {
      throw bad_input("data_offsets " + offsets.dump() + " out of range of the " +
                          std::to_string(data_size) + "-byte data section",
                      at, hint);
    }
    const uint64_t expected = numel * torch::elementSize(e.dtype);
    if (e.end - e.begin != expected) {
      throw bad_input("dtype " + std::string(dtype->name) + " x shape " + shape_text(e.shape) +
                          " needs " + std::to_string(expected) + " bytes, data_offsets give " +
                          std::to_string(e.end - e.begin),
                      at, hint);
    }
    file.entries_.emplace(name, std::move(e));
  }

  std::vector<std::pair<size_t, const std::string*>> by_start;
  for (const auto& [name, e] : file.entries_) by_start.emplace_back(e.begin, &name);
  std::sort(by_start.begin(), by_start.end());
  for (size_t i = 1; i < by_start.size(); ++i) {
    const Entry& prev = file.entries_.at(*by_start[i - 1].second);
    const Entry& cur = file.entries_.at(*by_start[i].second);
    if (cur.begin < prev.end && cur.end > cur.begin) {
      throw bad_input("data overlaps tensor " + *by_start[i - 1].second,
                      where(path, *by_start[i].second), hint);
    }
  }
  return file;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw bad_input("missing tensor", where(path_, name));
  return it->second;
}

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const {
  return entry(name).shape;
}

torch::Dtype SafetensorsFile::dtype(const std::string& name) const {
  return entry(name).dtype;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const Entry& e = entry(name);
  torch::Tensor out = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
  // A copy, not a view: the mapping is read-only and offsets need not be aligned for the dtype.
  if (e.end > e.begin) std::memcpy(out.data_ptr(), data_ + e.begin, e.end - e.begin);
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  for (const auto& [key, value] : metadata) header["__metadata__"][key] = value;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const torch::Dtype type = t.scalar_type();
    const auto* dtype = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                     [&](const auto& d) { return d.dtype == type; });
    if (dtype == std::end(kDtypes)) {
      throw runtime_failure("cannot write dtype " + std::string(c10::toString(t.scalar_type())),
                            where(path, name), "convert to float32, float16 or bfloat16 first");
    }
    const size_t bytes = t.nbytes();
    header[name] = {{"dtype", dtype->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw runtime_failure("cannot create file", path, "check the folder is writable");
  uint64_t len = text.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));
  out.write(reinterpret_cast<const char*>(len_bytes), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& [name, t] : tensors) {
    const torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
    out.write(static_cast<const char*>(host.data_ptr()),
              static_cast<std::streamsize>(host.nbytes()));
  }
  out.flush();
  if (!out) throw runtime_failure("write failed (disk full?)", path);
}

} // namespace treerpo::model
