#include "errors.h"

namespace systrap {

const char* errnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(ENOTDIR) E(EISDIR)
    E(EINVAL) E(ENFILE) E(EMFILE) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(ERANGE) E(ENOSYS)
    E(ETIMEDOUT) E(EOVERFLOW) E(EOPNOTSUPP)
#undef E
    default: {
      static thread_local char buf[16];
      snprintf(buf, sizeof buf, "E%d", err);
      return buf;
    }
  }
}

int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != (double)(int32_t)d) ThrowType(info.Env(), std::string(name) + " must be a 32-bit integer");
  return (int32_t)d;
}

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() > i && info[i].IsBigInt()) {
    bool lossless = true;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      // Negative bigints are accepted as their two's complement (syscall arguments like -1).
      int64_t s = info[i].As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) ThrowType(info.Env(), std::string(name) + " does not fit in 64 bits");
      v = (uint64_t)s;
    }
    return v;
  }
  if (info.Length() > i && info[i].IsNumber()) {
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (d < 0 || d != (double)(uint64_t)d || d > 9007199254740991.0)
      ThrowType(info.Env(), std::string(name) + " must be a non-negative safe integer or a bigint");
    return (uint64_t)d;
  }
  ThrowType(info.Env(), std::string(name) + " must be a bigint or a number");
}

uint64_t* ArgU64Array(const Napi::CallbackInfo& info, size_t i, const char* name, size_t minLen) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array)
    ThrowType(info.Env(), std::string(name) + " must be a BigUint64Array");
  auto a = info[i].As<Napi::BigUint64Array>();
  if (a.ElementLength() < minLen)
    ThrowType(info.Env(), std::string(name) + " must have at least " + std::to_string(minLen) + " elements");
  return a.Data();
}

Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsFunction()) ThrowType(info.Env(), std::string(name) + " must be a function");
  return info[i].As<Napi::Function>();
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean()) ThrowType(info.Env(), std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

}  // namespace systrap
