// http_response_fuzz.cpp: libFuzzer target for the response head parser (see
// fuzz-link: http_parse mime_codec
// http_head_fuzz.hpp).
#include "http_head_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run_head(uvs::http::Kind::kResponse, data, size);
}
