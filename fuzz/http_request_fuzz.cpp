// http_request_fuzz.cpp: libFuzzer target for the request head parser (see http_head_fuzz.hpp).
// fuzz-link: http_parse mime_codec
#include "http_head_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run_head(uvs::http::Kind::kRequest, data, size);
}
