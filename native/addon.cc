// The systrap addon: thin Init, every export defined in its own file.
#include <napi.h>

namespace systrap {
void InitPtrace(Napi::Env env, Napi::Object exports);
void InitMemoryFile(Napi::Env env, Napi::Object exports);
void InitStubRegion(Napi::Env env, Napi::Object exports);
void InitForker(Napi::Env env, Napi::Object exports);
void InitExitWatch(Napi::Env env, Napi::Object exports);
void InitSandbox(Napi::Env env, Napi::Object exports);
void InitLiveness(Napi::Env env, Napi::Object exports);
void InitProcFd(Napi::Env env, Napi::Object exports);
void InitExecProbe(Napi::Env env, Napi::Object exports);
void InitCpuClock(Napi::Env env, Napi::Object exports);
void InitHostIo(Napi::Env env, Napi::Object exports);
}  // namespace systrap

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  systrap::InitPtrace(env, exports);
  systrap::InitMemoryFile(env, exports);
  systrap::InitStubRegion(env, exports);
  systrap::InitForker(env, exports);
  systrap::InitExitWatch(env, exports);
  systrap::InitSandbox(env, exports);
  systrap::InitLiveness(env, exports);
  systrap::InitProcFd(env, exports);
  systrap::InitExecProbe(env, exports);
  systrap::InitCpuClock(env, exports);
  systrap::InitHostIo(env, exports);
  return exports;
}

NODE_API_MODULE(systrap, Init)
