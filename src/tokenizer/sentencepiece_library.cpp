#include "sentencepiece_library.h"

#include <dlfcn.h>

#include <cstdlib>

#include "treerpo/util/error.h"

namespace treerpo::tokenizer {

const SentencePieceLibrary& sentencepiece_library() {
  static const SentencePieceLibrary* library = [] {
    const char* override_path = std::getenv("TREERPO_SENTENCEPIECE_MODULE");
    const std::string path = override_path ? override_path : TREERPO_SENTENCEPIECE_MODULE;
    // DEEPBIND: the module and libsentencepiece resolve their protobuf symbols in their own copy
    // first. The sanitizer runtime cannot interpose a DEEPBIND library (google/sanitizers#611),
    // so the sanitized build (scripts/sanitize.sh) loads it plainly.
#if defined(__SANITIZE_ADDRESS__)
    const int flags = RTLD_NOW | RTLD_LOCAL;
#else
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
    void* handle = dlopen(path.c_str(), flags);
    if (!handle) {
      throw runtime_failure(
          std::string("cannot load the sentencepiece module: ") + dlerror(), path,
          "rebuild treerpo or set TREERPO_SENTENCEPIECE_MODULE to the module's path");
    }
    using Entry = const SentencePieceLibrary* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "treerpo_sentencepiece_library"));
    if (!entry) {
      throw runtime_failure("the sentencepiece module has no entry point", path, "rebuild treerpo");
    }
    return entry();
  }();
  return *library;
}

} // namespace treerpo::tokenizer
