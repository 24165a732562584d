// dns.cpp: the socket.dns namespace. Layer: glue.
//
// Every lookup runs as a Job: in a task on libuv's thread pool while the task waits, in a plain
// script directly on the calling thread, blocking like LuaSocket's. The resolver is the C
// library's, so /etc/hosts, nsswitch.conf and search domains apply as everywhere else.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "loop/job.hpp"
#include "loop/runtime.hpp"
#include "lua/lua_api.hpp"
#include "socket/address.hpp"
#include "socket/errors.hpp"
#include "socket/resolve.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

using loop::Job;
using loop::Runtime;

namespace {

// --- the jobs --------------------------------------------------------------------------------

// gethostbyname/gethostbyaddr, IPv4 and IPv6, with the answer copied out.
class HostJob final : public Job {
 public:
  HostJob(const char* query, bool reverse) : query_(query), reverse_(reverse) {}

  void work() noexcept override {
    try {
      lookup();
    } catch (...) {  // out of memory on the pool thread: report it as a failed lookup
      herr_ = NO_RECOVERY;
      ips_.clear();
    }
  }

  void lookup() {
    hostent he{};
    hostent* res = nullptr;
    std::vector<char> buf(8192);
    unsigned char addr[sizeof(in6_addr)];
    for (;;) {
      int rc = 0;
      if (reverse_) {
        int family = AF_INET;
        socklen_t len = sizeof(in_addr);
        if (inet_pton(AF_INET, query_.c_str(), addr) != 1) {
          family = AF_INET6;
          len = sizeof(in6_addr);
          if (inet_pton(AF_INET6, query_.c_str(), addr) != 1) {
            herr_ = HOST_NOT_FOUND;
            return;
          }
        }
        rc = gethostbyaddr_r(addr, len, family, &he, buf.data(), buf.size(), &res, &herr_);
      } else {
        rc = gethostbyname_r(query_.c_str(), &he, buf.data(), buf.size(), &res, &herr_);
      }
      if (rc == ERANGE && buf.size() < (1u << 20)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      break;
    }
    if (!res) {
      if (herr_ == 0) herr_ = HOST_NOT_FOUND;
      return;
    }
    herr_ = 0;
    name_ = res->h_name ? res->h_name : "";
    for (char** a = res->h_aliases; a && *a; a++)
      aliases_.emplace_back(*a);
    for (char** p = res->h_addr_list; p && *p; p++) {
      char text[INET6_ADDRSTRLEN];
      if (inet_ntop(res->h_addrtype, *p, text, sizeof text)) ips_.emplace_back(text);
    }
  }

  // Pushes first, resolved (first is the first address, or the name) | nil, err.
  int push(lua_State* L, bool want_name) const {
    if (herr_ != 0 || ips_.empty()) {
      lua_pushnil(L);
      lua_pushstring(L, host_error(herr_ ? herr_ : HOST_NOT_FOUND));
      return 2;
    }
    lua_pushstring(L, want_name ? name_.c_str() : ips_.front().c_str());
    lua_createtable(L, 0, 3);
    lua_pushstring(L, name_.c_str());
    lua_setfield(L, -2, "name");
    push_list(L, aliases_);
    lua_setfield(L, -2, "alias");
    push_list(L, ips_);
    lua_setfield(L, -2, "ip");
    return 2;
  }

 private:
  static void push_list(lua_State* L, const std::vector<std::string>& v) {
    lua_createtable(L, static_cast<int>(v.size()), 0);
    for (size_t i = 0; i < v.size(); i++) {
      lua_pushstring(L, v[i].c_str());
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
  }
  std::string query_;
  bool reverse_;
  int herr_ = 0;
  std::string name_;
  std::vector<std::string> aliases_;
  std::vector<std::string> ips_;
};

// getaddrinfo + getnameinfo on each answer.
class NameInfoJob final : public Job {
 public:
  NameInfoJob(const char* host, const char* serv)
      : host_(host ? host : ""), serv_(serv ? serv : ""), has_host_(host), has_serv_(serv) {}

  void work() noexcept override {
    try {
      lookup();
    } catch (...) {  // out of memory on the pool thread
      gai_ = EAI_MEMORY;
    }
  }

  void lookup() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    gai_ = getaddrinfo(has_host_ ? host_.c_str() : nullptr, has_serv_ ? serv_.c_str() : nullptr,
                       &hints, &res);
    sys_ = errno;
    if (gai_) return;
    for (addrinfo* a = res; a; a = a->ai_next) {
      char host[NI_MAXHOST] = "";
      char serv[NI_MAXSERV] = "";
      const int e = getnameinfo(a->ai_addr, a->ai_addrlen, host, has_host_ ? sizeof host : 0, serv,
                                has_serv_ ? sizeof serv : 0, 0);
      if (e != 0) continue;  // an address without a name is left out, not reported as garbage
      if (has_host_) names_.emplace_back(host);
      if (has_serv_ && service_.empty()) service_ = serv;
    }
    freeaddrinfo(res);
  }

  int push(lua_State* L) const {
    if (gai_) {
      lua_pushnil(L);
      lua_pushstring(L, gai_error(gai_, sys_));
      return 2;
    }
    lua_createtable(L, static_cast<int>(names_.size()), 0);
    for (size_t i = 0; i < names_.size(); i++) {
      lua_pushstring(L, names_[i].c_str());
      lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    }
    if (!has_serv_) return 1;
    lua_pushstring(L, service_.c_str());
    return 2;
  }

 private:
  std::string host_;
  std::string serv_;
  bool has_host_;
  bool has_serv_;
  int gai_ = 0;
  int sys_ = 0;
  std::vector<std::string> names_;
  std::string service_;
};

// Makes a job of type J, or nullptr when memory is exhausted (no exception may reach Lua).
template <typename J, typename... A>
J* make_job(A... args) {
  try {
    return new J(args...);  // freed by the caller of run_job, or by itself when orphaned
  } catch (...) {
    return nullptr;
  }
}

// Runs `job` for the calling code through loop::wait(): queued and waited for in a task
// (returns kNone: the caller yields), or run right here. Any other outcome is an interrupted
// wait, and the job is gone.
loop::Wake run_job(lua_State* L, Job* job) {
  loop::WaitSpec spec;
  spec.what = "lookup";
  const loop::Wake r = loop::wait(L, Runtime::of(L), *job, spec);
  if (r != loop::Wake::kNone && r != loop::Wake::kReady) delete job;
  return r;
}

// Collects a finished job after a yield; nullptr if the wait ended otherwise (cancelled).
Job* resumed_job(lua_State* L) {
  Runtime* rt = Runtime::of(L);
  Job* j = loop::take_job(rt->task_of(L));
  if (j && loop::resumed(L, rt) != loop::Wake::kReady) {
    delete j;
    return nullptr;
  }
  return j;
}

// Pushes a finished job's answer and deletes the job, even when a push raises a memory error
// (the pushes run under lua_pcall; the error is raised again once the job is gone).
template <typename J>
int push_job(lua_State* L, J* job, bool name = false) {
  struct Call {
    J* job;
    bool name;
  } call{job, name};
  const int base = lua_gettop(L);
  lua_pushcfunction(L, [](lua_State* Ls) -> int {
    auto* c = static_cast<Call*>(lua_touserdata(Ls, 1));
    lua_settop(Ls, 0);
    if constexpr (std::is_same_v<J, HostJob>) {
      return c->job->push(Ls, c->name);
    } else {
      return c->job->push(Ls);
    }
  });
  lua_pushlightuserdata(L, &call);
  const int status = lua_pcall(L, 1, LUA_MULTRET, 0);
  delete job;
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L) - base;
}

int push_interrupted(lua_State* L, loop::Wake why) {
  const int st = io_status(why);
  return push_error(L, st == kIoDone ? kIoUnknown : st);
}

int push_resumed_failure(lua_State* L) {
  return push_interrupted(L, loop::resumed(L, Runtime::of(L)));
}

// --- toip, tohostname ------------------------------------------------------------------------

// ctx: 0 = toip, 1 = tohostname
int host_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  auto* job = static_cast<HostJob*>(resumed_job(L));
  if (!job) return push_resumed_failure(L);
  return push_job(L, job, ctx == 1);
}

bool is_ip_literal(const char* s) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

// dns.toip(name) -> ip, resolved | nil, err
// An address literal is its own answer (no reverse lookup, unlike LuaSocket 3.1).
int dns_toip(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  if (is_ip_literal(name)) {
    lua_pushstring(L, name);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    lua_newtable(L);
    lua_setfield(L, -2, "alias");
    lua_createtable(L, 1, 0);
    lua_pushstring(L, name);
    lua_rawseti(L, -2, 1);
    lua_setfield(L, -2, "ip");
    return 2;
  }
  auto* job = make_job<HostJob>(name, false);
  if (!job) return push_error(L, ENOMEM);
  const loop::Wake r = run_job(L, job);
  if (r == loop::Wake::kNone) return loop::yield(L, Runtime::of(L), 0, host_k);
  if (r != loop::Wake::kReady) return push_interrupted(L, r);
  return push_job(L, job, false);
}

// dns.tohostname(address) -> name, resolved | nil, err
int dns_tohostname(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  auto* job = make_job<HostJob>(name, is_ip_literal(name));
  if (!job) return push_error(L, ENOMEM);
  const loop::Wake r = run_job(L, job);
  if (r == loop::Wake::kNone) return loop::yield(L, Runtime::of(L), 1, host_k);
  if (r != loop::Wake::kReady) return push_interrupted(L, r);
  return push_job(L, job, true);
}

// --- getnameinfo -----------------------------------------------------------------------------

int nameinfo_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  auto* job = static_cast<NameInfoJob*>(resumed_job(L));
  if (!job) return push_resumed_failure(L);
  return push_job(L, job);
}

// dns.getnameinfo(host, serv) -> names [, service] | nil, err
int dns_getnameinfo(lua_State* L) {
  const char* host = luaL_optstring(L, 1, nullptr);
  const char* serv = luaL_optstring(L, 2, nullptr);
  if (!host && !serv) return luaL_error(L, "host and serv cannot be both nil");
  auto* job = make_job<NameInfoJob>(host, serv);
  if (!job) return push_error(L, ENOMEM);
  const loop::Wake r = run_job(L, job);
  if (r == loop::Wake::kNone) return loop::yield(L, Runtime::of(L), 0, nameinfo_k);
  if (r != loop::Wake::kReady) return push_interrupted(L, r);
  return push_job(L, job);
}

// --- getaddrinfo, gethostname ----------------------------------------------------------------

// dns.getaddrinfo(host) -> { {family = "inet"|"inet6", addr = "numeric"}, ... } | nil, err
int getaddrinfo_k(lua_State* L, int status, lua_KContext ctx) {
  (void)status;
  Runtime* rt = Runtime::of(L);
  bool waiting = ctx != 0;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  Resolved r;
  if (!resolve_step(L, SocketRuntime::of(L), &waiting, lua_tostring(L, 1), nullptr, hints, &r)) {
    return loop::yield(L, rt, 1, getaddrinfo_k);
  }
  if (!r.ok()) {
    lua_pushnil(L);
    lua_pushstring(L, r.message());
    return 2;
  }
  // Built under lua_pcall, so that the list is freed even when a push raises.
  lua_pushcfunction(L, [](lua_State* Ls) -> int {
    auto* list = static_cast<addrinfo*>(lua_touserdata(Ls, 1));
    lua_newtable(Ls);
    int i = 1;
    for (addrinfo* a = list; a; a = a->ai_next) {
      char host[NI_MAXHOST];
      if (getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST)) {
        continue;
      }
      lua_createtable(Ls, 0, 2);
      lua_pushstring(Ls, family_name(a->ai_family));
      lua_setfield(Ls, -2, "family");
      lua_pushstring(Ls, host);
      lua_setfield(Ls, -2, "addr");
      lua_rawseti(Ls, -2, i++);
    }
    return 1;
  });
  lua_pushlightuserdata(L, r.ai);
  const int built = lua_pcall(L, 1, 1, 0);
  freeaddrinfo(r.ai);
  if (built != LUA_OK) return lua_error(L);
  return 1;
}

int dns_getaddrinfo(lua_State* L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  return getaddrinfo_k(L, LUA_OK, 0);
}

// dns.gethostname() -> name | nil, err
int dns_gethostname(lua_State* L) {
  char name[HOST_NAME_MAX + 1];
  if (::gethostname(name, sizeof name) < 0) return push_error(L, errno);
  name[HOST_NAME_MAX] = '\0';
  lua_pushstring(L, name);
  return 1;
}

}  // namespace

// Adds the `dns` table to the namespace at `ns`; `rt` is the runtime handle (upvalue).
void open_dns(lua_State* L, int ns, int rt) {
  const luaL_Reg funcs[] = {
      {"toip", dns_toip},
      {"tohostname", dns_tohostname},
      {"getaddrinfo", dns_getaddrinfo},
      {"getnameinfo", dns_getnameinfo},
      {"gethostname", dns_gethostname},
      {nullptr, nullptr},
  };
  lua_newtable(L);
  lua_pushvalue(L, rt);
  luaL_setfuncs(L, funcs, 1);
  lua_setfield(L, ns, "dns");
}

}  // namespace uvs::socket
