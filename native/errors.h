// Error helpers shared by the native sources. Every host failure becomes a JS Error shaped like
// Node's SystemError ({ code, errno, syscall }); src/errors.ts turns it into a SystrapError.
#ifndef SYSTRAP_ERRORS_H
#define SYSTRAP_ERRORS_H

#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace systrap {

// errnoName returns the symbolic name of an errno value ("ESRCH"), or "E<number>".
const char* errnoName(int err);

// ErrnoError builds the error for a failed host call. Capture errno before calling anything else.
inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  std::string msg = std::string(errnoName(err)) + ": " + strerror(err) + ", " + syscall;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, errnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

[[noreturn]] inline void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  throw ErrnoError(env, err, syscall);
}

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

// Argument readers: each checks its argument and throws a precise TypeError.
int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name);  // number or bigint
uint64_t* ArgU64Array(const Napi::CallbackInfo& info, size_t i, const char* name, size_t minLen);
Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* name);
// A boolean argument, or a TypeError naming it.
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace systrap

#endif
