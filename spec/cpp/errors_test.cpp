// errors_test.cpp: the error strings callers compare against.
#include "socket/errors.hpp"

#include <netdb.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

using namespace uvs::socket;

TEST_CASE("LuaSocket's fixed I/O messages", "[errors]") {
  CHECK(io_error(kIoDone) == nullptr);
  CHECK(std::string(io_error(kIoTimeout)) == "timeout");
  CHECK(std::string(io_error(kIoClosed)) == "closed");
  CHECK(std::string(io_error(ECONNREFUSED)) == "connection refused");
  CHECK(std::string(io_error(EADDRINUSE)) == "address already in use");
  CHECK(std::string(io_error(EISCONN)) == "already connected");
  CHECK(std::string(io_error(EACCES)) == "permission denied");
  CHECK(std::string(io_error(ECONNRESET)) == "closed");
  CHECK(std::string(io_error(EPIPE)) == "closed");
  CHECK(std::string(io_error(ETIMEDOUT)) == "timeout");
  CHECK(std::string(io_error(EBADF)) == "Bad file descriptor");
}

TEST_CASE("resolver messages", "[errors]") {
  CHECK(gai_error(0, 0) == nullptr);
  CHECK(std::string(gai_error(EAI_NONAME, 0)) == "host or service not provided, or not known");
  CHECK(std::string(gai_error(EAI_SERVICE, 0)) == "service not supported for socket type");
  CHECK(std::string(gai_error(EAI_AGAIN, 0)) == "temporary failure in name resolution");
  CHECK(std::string(gai_error(EAI_SYSTEM, ENOMEM)) == "Cannot allocate memory");
  CHECK(std::string(host_error(HOST_NOT_FOUND)) == "host not found");
}
