// runtime.cpp: the runtime's creation and shutdown. Layer: loop. See runtime.hpp.
#include "loop/runtime.hpp"

#include <new>

#include "loop/job.hpp"
#include "loop/signal.hpp"

namespace uvs::loop {

namespace {

constexpr const char* kRuntimeClass = "uvsocket.runtime";

}  // namespace

Runtime* Runtime::create(lua_State* L) {
  auto** box = static_cast<Runtime**>(lua_newuserdatauv(L, sizeof(Runtime*), 0));
  *box = nullptr;
  if (luaL_newmetatable(L, kRuntimeClass)) {
    lua_pushcfunction(L, on_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  auto* rt = new (std::nothrow) Runtime();  // freed in on_gc
  if (!rt) luaL_error(L, "socket.core: not enough memory");
  if (uv_loop_init(&rt->loop_) != 0) {
    delete rt;
    luaL_error(L, "socket.core: cannot create the event loop");
  }
  rt->loop_.data = rt;
  uv_timer_init(&rt->loop_, &rt->tick_);  // closed in shutdown()
  rt->tick_.data = rt;
  uv_timer_init(&rt->loop_, &rt->idle_);  // closed in shutdown()
  rt->idle_.data = rt;
  uv_unref(reinterpret_cast<uv_handle_t*>(&rt->idle_));
  uv_prepare_init(&rt->loop_, &rt->prepare_);  // closed in shutdown()
  rt->prepare_.data = rt;
  uv_prepare_start(&rt->prepare_, on_prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(&rt->prepare_));
  rt->jobs_ = new (std::nothrow) JobQueue();  // deleted in on_gc
  if (!rt->jobs_ || !rt->jobs_->init(rt, &rt->loop_)) {
    delete rt->jobs_;
    rt->jobs_ = nullptr;
    *box = rt;  // the handle's __gc cleans up what was made
    luaL_error(L, "socket.core: cannot start the lookup queue");
  }
  *box = rt;
  uv_timer_init(&rt->loop_, &rt->trim_timer_);  // closed in shutdown()
  uv_unref(reinterpret_cast<uv_handle_t*>(&rt->trim_timer_));
  HeapTrim::install(L, -1);
  return rt;
}

int Runtime::on_gc(lua_State* L) {
  auto** box = static_cast<Runtime**>(luaL_checkudata(L, 1, kRuntimeClass));
  Runtime* rt = *box;
  if (!rt) return 0;
  *box = nullptr;
  rt->shutdown();
  delete rt->ext_;   // set by the socket layer when the module loaded
  delete rt->jobs_;  // allocated in create()
  delete rt;         // allocated in create()
  return 0;
}

void Runtime::shutdown() {
  closing_ = true;
  // Lookups still running go on alone (leaving the program does not wait for them); no pool
  // thread touches this runtime from here on.
  if (jobs_) jobs_->close();
  // The extension closes what it opened (its watchers and its epoll set's handle), then every
  // other handle still open is closed.
  if (ext_) ext_->shutdown();
  for (SignalWatch* w : signals_) {
    if (w) w->close();
  }
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  while (uv_loop_close(&loop_) == UV_EBUSY)
    uv_run(&loop_, UV_RUN_DEFAULT);
  for (SignalWatch*& w : signals_) {
    delete w;  // allocated in signal_watch()
    w = nullptr;
  }
}

size_t Runtime::live_jobs() const { return jobs_ ? static_cast<size_t>(jobs_->live()) : 0; }

size_t Runtime::open_handles() {
  struct Count {
    Runtime* rt;
    size_t n;
  } c{this, 0};
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void* arg) {
        auto* n = static_cast<Count*>(arg);
        if (uv_is_closing(h) || !uv_is_active(h) || !uv_has_ref(h)) return;
        if (h == reinterpret_cast<uv_handle_t*>(&n->rt->tick_) ||
            h == reinterpret_cast<uv_handle_t*>(&n->rt->idle_) ||
            h == reinterpret_cast<uv_handle_t*>(&n->rt->prepare_) ||
            (n->rt->jobs_ && h == n->rt->jobs_->handle())) {
          return;
        }
        n->n++;
      },
      &c);
  return c.n + loop_.active_reqs.count;
}

}  // namespace uvs::loop
