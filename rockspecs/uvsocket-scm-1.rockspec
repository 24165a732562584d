-- uvsocket-scm-1.rockspec: builds uvsocket with its own CMake build (docs/install.md).
rockspec_format = "3.0"
package = "uvsocket"
version = "scm-1"

-- The repository has no published address yet; `luarocks make` from a checkout does not use
-- this.
source = {
  url = "git+file:///work/main",
  branch = "main",
}

description = {
  summary = "LuaSocket for Lua 5.4 on libuv, with a coroutine task scheduler built in",
  detailed = [[
uvsocket gives LuaSocket 3.1's API (socket, socket.core, socket.http, socket.ftp, socket.smtp,
socket.url, socket.headers, ltn12, mime) re-made in C++ on libuv. Called from a plain script
every call blocks as LuaSocket's does; called from a task under socket.async.run, a call that
would block yields to the scheduler instead. It installs under LuaSocket's module names on
purpose, so that libraries written for LuaSocket use it unchanged.
]],
  license = "MIT",
  labels = { "socket", "network", "libuv", "async", "coroutines" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  LIBUV = { header = "uv.h", library = "uv" },
  -- for the TLS module
  OPENSSL = { header = "openssl/ssl.h", library = "ssl" },
}

build = {
  type = "cmake",
  variables = {
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_C_FLAGS = "$(CFLAGS)",
    CMAKE_CXX_FLAGS = "$(CFLAGS)",
    CMAKE_MODULE_LINKER_FLAGS = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    -- pkg-config looks for libuv.pc under the prefix where LuaRocks found libuv
    CMAKE_PREFIX_PATH = "$(LIBUV_DIR)",
    -- FindOpenSSL (socket.tls) looks where LuaRocks found OpenSSL
    OPENSSL_ROOT_DIR = "$(OPENSSL_DIR)",
    UVSOCKET_TESTS = "OFF",
    UVSOCKET_BENCH = "OFF",
  },
  copy_directories = { "docs", "examples" },
}
