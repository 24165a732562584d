// resolve.cpp: see resolve.hpp. Layer: transport.
#include "socket/resolve.hpp"

#include <cerrno>
#include <new>

#include "socket/errors.hpp"
#include "socket/socket.hpp"

namespace uvs::socket {

const char* Resolved::message() const {
  if (io) return io_error(io);
  return gai_error(gai, sys);
}

ResolveJob::ResolveJob(const char* host, const char* serv, const addrinfo& hints)
    : host_(host ? host : ""),
      serv_(serv ? serv : ""),
      has_host_(host != nullptr),
      has_serv_(serv != nullptr),
      hints_(hints) {}

ResolveJob::~ResolveJob() {
  if (result_.ai) freeaddrinfo(result_.ai);
}

void ResolveJob::work() {
  result_.gai = getaddrinfo(has_host_ ? host_.c_str() : nullptr,
                            has_serv_ ? serv_.c_str() : nullptr, &hints_, &result_.ai);
  result_.sys = errno;
}

Resolved ResolveJob::take() {
  Resolved r = result_;
  result_.ai = nullptr;
  return r;
}

namespace {

Resolved resolve_here(const char* host, const char* serv, const addrinfo& hints) {
  Resolved r;
  r.gai = getaddrinfo(host, serv, &hints, &r.ai);
  r.sys = errno;
  return r;
}

}  // namespace

bool resolve_step(lua_State* L, loop::Runtime* rt, bool* waiting, const char* host,
                  const char* serv, const addrinfo& hints, Resolved* out) {
  if (*waiting) {
    *waiting = false;
    const int st = resume_status(L, rt);
    loop::Task* t = rt->task_of(L);
    loop::Job* j = t ? rt->take_job(t) : nullptr;
    if (st != kIoDone || !j) {
      out->io = st != kIoDone ? st : kIoUnknown;
      return true;
    }
    auto* job = static_cast<ResolveJob*>(j);
    *out = job->take();
    delete job;  // allocated below
    return true;
  }
  // A numeric address (or none, for a passive bind) is answered without any I/O.
  addrinfo numeric = hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  Resolved r = resolve_here(host, serv, numeric);
  if (r.gai != EAI_NONAME || host == nullptr) {
    *out = r;
    return true;
  }
  loop::Task* t = rt->yieldable_task(L);
  if (!t) {
    rt->warn_blocking(L);
    *out = resolve_here(host, serv, hints);
    return true;
  }
  ResolveJob* job = nullptr;
  try {
    job = new ResolveJob(host, serv, hints);  // freed above, or by itself when orphaned
  } catch (const std::bad_alloc&) {
    job = nullptr;
  }
  if (!job || !job->start(rt, t)) {
    delete job;
    *out = resolve_here(host, serv, hints);
    return true;
  }
  *waiting = true;
  return false;
}

}  // namespace uvs::socket
