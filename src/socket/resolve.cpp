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

void ResolveJob::work() noexcept {
  result_.gai = getaddrinfo(has_host_ ? host_.c_str() : nullptr,
                            has_serv_ ? serv_.c_str() : nullptr, &hints_, &result_.ai);
  result_.sys = errno;
}

Resolved ResolveJob::take() {
  Resolved r = result_;
  result_.ai = nullptr;
  return r;
}

bool resolve_step(lua_State* L, SocketRuntime* sr, bool* waiting, const char* host,
                  const char* serv, const addrinfo& hints, Resolved* out) {
  loop::Runtime* rt = sr->rt();
  if (*waiting) {
    *waiting = false;
    const int st = resume_status(L, sr);
    auto* job = static_cast<ResolveJob*>(loop::take_job(rt->task_of(L)));
    if (st != kIoDone || !job) {
      delete job;
      out->io = st != kIoDone ? st : kIoUnknown;
      return true;
    }
    *out = job->take();
    delete job;  // allocated below
    return true;
  }
  // A numeric address (or none, for a passive bind) is answered without any I/O.
  addrinfo numeric = hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  out->gai = getaddrinfo(host, serv, &numeric, &out->ai);
  out->sys = errno;
  if (out->gai != EAI_NONAME || host == nullptr) return true;
  out->gai = 0;
  ResolveJob* job = nullptr;
  try {
    job = new ResolveJob(host, serv, hints);  // freed above, here, or by itself when orphaned
  } catch (...) {                             // no exception may reach Lua's frames
    out->io = ENOMEM;
    return true;
  }
  loop::WaitSpec spec;
  spec.what = "lookup";
  const loop::Wake r = loop::wait(L, rt, *job, spec);
  if (r == loop::Wake::kNone) {
    *waiting = true;
    return false;
  }
  if (r == loop::Wake::kReady) {
    *out = job->take();
  } else {
    out->io = io_status(r);
  }
  delete job;
  return true;
}

}  // namespace uvs::socket
