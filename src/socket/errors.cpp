// errors.cpp: see errors.hpp. Layer: pure.
#include "socket/errors.hpp"

#include <netdb.h>

#include <cerrno>
#include <cstring>

namespace uvs::socket {

const char* io_error(int status) {
  switch (status) {
    case kIoDone:
      return nullptr;
    case kIoTimeout:
      return "timeout";
    case kIoClosed:
      return "closed";
    case kIoCancelled:
      return "cancelled";
    case kIoOversized:
      return "oversized";
    case kIoUnknown:
      return "unknown error";
    case EADDRINUSE:
      return "address already in use";
    case EISCONN:
      return "already connected";
    case EACCES:
      return "permission denied";
    case ECONNREFUSED:
      return "connection refused";
    case ECONNABORTED:
    case ECONNRESET:
    case EPIPE:
      return "closed";
    case ETIMEDOUT:
      return "timeout";
    default:
      return status > 0 ? std::strerror(status) : "unknown error";
  }
}

const char* gai_error(int code, int sys_errno) {
  switch (code) {
    case 0:
      return nullptr;
    case EAI_AGAIN:
      return "temporary failure in name resolution";
    case EAI_BADFLAGS:
      return "invalid value for ai_flags";
    case EAI_FAIL:
      return "non-recoverable failure in name resolution";
    case EAI_FAMILY:
      return "ai_family not supported";
    case EAI_MEMORY:
      return "memory allocation failure";
    case EAI_NONAME:
      return "host or service not provided, or not known";
    case EAI_OVERFLOW:
      return "argument buffer overflow";
    case EAI_SERVICE:
      return "service not supported for socket type";
    case EAI_SOCKTYPE:
      return "ai_socktype not supported";
    case EAI_SYSTEM:
      return std::strerror(sys_errno);
    default:
      return gai_strerror(code);
  }
}

const char* host_error(int herr) {
  switch (herr) {
    case HOST_NOT_FOUND:
      return "host not found";
    case TRY_AGAIN:
      return "Host name lookup failure";
    case NO_RECOVERY:
      return "Unknown server error";
    case NO_DATA:
      return "No address associated with name";
    default:
      return "Unknown resolver error";
  }
}

}  // namespace uvs::socket
