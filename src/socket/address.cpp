// address.cpp: see address.hpp. Layer: pure.
#include "socket/address.hpp"

#include <netdb.h>

#include <cstdlib>
#include <cstring>

namespace uvs::socket {

const char* family_name(int family) {
  switch (family) {
    case AF_INET:
      return "inet";
    case AF_INET6:
      return "inet6";
    case AF_UNSPEC:
      return "unspec";
    default:
      return "unknown";
  }
}

int numeric_name(const sockaddr* sa, socklen_t len, char* host, size_t hostlen, int* port) {
  char serv[16];
  const int err = getnameinfo(sa, len, host, static_cast<socklen_t>(hostlen), serv, sizeof serv,
                              NI_NUMERICHOST | NI_NUMERICSERV);
  if (err) return err;
  *port = std::atoi(serv);
  return 0;
}

int parse_family(const char* name) {
  if (std::strcmp(name, "inet") == 0) return AF_INET;
  if (std::strcmp(name, "inet6") == 0) return AF_INET6;
  if (std::strcmp(name, "unspec") == 0) return AF_UNSPEC;
  return -1;
}

}  // namespace uvs::socket
