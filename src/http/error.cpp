// error.cpp: see error.hpp. Layer: pure.
#include "http/error.hpp"

namespace uvs::http {

const char* error_name(Error e) {
  switch (e) {
    case Error::kNone:
      return "";
    case Error::kBadRequestLine:
      return "bad request line";
    case Error::kBadMethod:
      return "bad method";
    case Error::kBadTarget:
      return "bad target";
    case Error::kBadVersion:
      return "bad version";
    case Error::kBareCr:
      return "bare CR";
    case Error::kBareLf:
      return "bare LF";
    case Error::kControlByte:
      return "control byte";
    case Error::kBadHeaderName:
      return "bad header name";
    case Error::kSpaceBeforeColon:
      return "whitespace before colon";
    case Error::kObsFold:
      return "obs-fold";
    case Error::kBadContentLength:
      return "bad content-length";
    case Error::kConflictingLength:
      return "conflicting content-length";
    case Error::kLengthAndEncoding:
      return "content-length and transfer-encoding";
    case Error::kBadTransferEncoding:
      return "bad transfer-encoding";
    case Error::kMissingHost:
      return "missing host";
    case Error::kDuplicateHost:
      return "duplicate host";
    case Error::kBadChunkSize:
      return "bad chunk size";
    case Error::kBadChunkExtension:
      return "bad chunk extension";
    case Error::kBadChunkEnd:
      return "bad chunk end";
    case Error::kUriTooLong:
      return "uri too long";
    case Error::kHeaderLineTooLong:
      return "header line too long";
    case Error::kTooManyHeaders:
      return "too many headers";
    case Error::kHeadersTooLarge:
      return "headers too large";
    case Error::kChunkTooLarge:
      return "chunk too large";
    case Error::kChunkLineTooLong:
      return "chunk line too long";
    case Error::kUnsupportedCoding:
      return "unsupported transfer coding";
    case Error::kVersionNotSupported:
      return "version not supported";
    case Error::kBadStatusLine:
      return "bad status line";
    case Error::kBadStatus:
      return "bad status code";
    case Error::kStatusLineTooLong:
      return "status line too long";
    case Error::kNoMemory:
      return "not enough memory";
  }
  return "unknown error";
}

int error_status(Error e) {
  switch (e) {
    case Error::kNone:
      return 0;
    case Error::kUriTooLong:
      return 414;
    case Error::kHeaderLineTooLong:
    case Error::kTooManyHeaders:
    case Error::kHeadersTooLarge:
      return 431;
    case Error::kChunkTooLarge:
      return 413;
    case Error::kUnsupportedCoding:
      return 501;
    case Error::kVersionNotSupported:
      return 505;
    case Error::kBadStatusLine:
    case Error::kBadStatus:
    case Error::kStatusLineTooLong:
      return 502;
    case Error::kNoMemory:
      return 500;
    default:
      return 400;
  }
}

}  // namespace uvs::http
