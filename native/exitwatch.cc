// ExitWatch: calls back on the event loop when a stub process exits, without any thread waiting.
// A pidfd becomes readable when its process exits; libuv polls it like a socket. The callback
// only reports; reaping is left to the caller (src/actors/subprocess.ts), which knows whether a
// tracer worker is in the middle of a transaction on that pid.
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <set>

#include "errors.h"

namespace systrap {

class ExitWatch : public Napi::ObjectWrap<ExitWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ExitWatch", {InstanceMethod<&ExitWatch::Close>("close")});
  }

  // new ExitWatch(pid, onExit: () => void)
  ExitWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExitWatch>(info) {
    Napi::Env env = info.Env();
    pid_t pid = ArgInt(info, 0, "pid");
    Napi::Function cb = ArgFunction(info, 1, "onExit");
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd == -1) ThrowErrno(env, errno, "pidfd_open");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      close(fd);
      throw Napi::Error::New(env, "no event loop");
    }
    state_ = new State{};
    state_->fd = fd;
    state_->env = env;
    state_->cb = Napi::Persistent(cb);
    state_->self = Napi::Persistent(info.This().As<Napi::Object>());  // alive while polling
    state_->poll.data = state_;
    uv_poll_init(loop, &state_->poll, fd);
    uv_poll_start(&state_->poll, UV_READABLE, OnReadable);
    Watches().insert(state_);
    if (!KeepsAlive()) uv_unref(reinterpret_cast<uv_handle_t*>(&state_->poll));
  }

  // setExitWatchesKeepAlive(on): whether the watches keep the event loop alive (platform.unref()).
  // Only the main thread makes watches (the platform's actors), so one set serves the process.
  static Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
    bool on = ArgBool(info, 0, "on");
    KeepsAlive() = on;
    for (State* s : Watches()) {
      uv_handle_t* h = reinterpret_cast<uv_handle_t*>(&s->poll);
      if (on) uv_ref(h);
      else uv_unref(h);
    }
    return info.Env().Undefined();
  }

  ~ExitWatch() { Stop(); }

 private:
  struct State {
    uv_poll_t poll;
    int fd;
    napi_env env;
    Napi::FunctionReference cb;
    Napi::ObjectReference self;
  };

  // Live watches and whether they keep the loop alive. Protected by: the main thread only.
  static std::set<State*>& Watches() {
    static std::set<State*> watches;
    return watches;
  }
  static bool& KeepsAlive() {
    static bool on = true;
    return on;
  }

  static void OnClosed(uv_handle_t* h) {
    State* s = static_cast<State*>(h->data);
    close(s->fd);
    delete s;
  }

  // Stop ends polling; the State is freed once libuv has closed the handle.
  void Stop() {
    if (!state_) return;
    State* s = state_;
    state_ = nullptr;
    Watches().erase(s);
    s->cb.Reset();
    s->self.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), OnClosed);
  }

  static void OnReadable(uv_poll_t* h, int status, int events) {
    State* s = static_cast<State*>(h->data);
    Napi::Env env(s->env);
    Napi::HandleScope scope(env);
    Napi::Function cb = s->cb.Value();
    ExitWatch* self = ExitWatch::Unwrap(s->self.Value());
    self->Stop();  // one report per exit
    // MakeCallback also runs the process's nextTick queue and microtasks: anything of the
    // embedder's that throws there surfaces here. Thrown on from a libuv callback it would be
    // std::terminate (an abort of Node); it goes to Node's uncaught-exception handling instead,
    // as an exception of any other callback does.
    try {
      cb.MakeCallback(env.Global(), {});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }

  State* state_ = nullptr;
};

void InitExitWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("ExitWatch", ExitWatch::Define(env));
  exports.Set("setExitWatchesKeepAlive", Napi::Function::New(env, ExitWatch::SetKeepAlive, "setExitWatchesKeepAlive"));
}

}  // namespace systrap
