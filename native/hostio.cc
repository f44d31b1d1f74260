// Two facts of Node's own host that its start-up needs, without the Node modules that give
// them (node:tty loads node:net and node:stream, node:crypto its whole provider: together a
// few ms of a `systrap run` that needs one bit and 16 bytes).
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"

namespace systrap {

// isTerminal(fd) -> boolean: whether Node's fd `fd` is a terminal (isatty(3)), as tty.isatty.
static Napi::Value IsTerminal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  if (fd < 0) throw Napi::RangeError::New(env, "fd must be non-negative");
  return Napi::Boolean::New(env, isatty(fd) == 1);
}

// getRandom(length) -> Buffer: `length` (1..256) bytes from the kernel's CSPRNG (getrandom(2),
// blocking only before the pool was ever initialised), for a program's AT_RANDOM and tokens.
static Napi::Value GetRandom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int n = ArgInt(info, 0, "length");
  if (n < 1 || n > 256) throw Napi::RangeError::New(env, "length must be in 1..256");
  unsigned char buf[256];
  ssize_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, (size_t)(n - got), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "getrandom");
    }
    got += r;
  }
  return Napi::Buffer<unsigned char>::Copy(env, buf, (size_t)n);
}

void InitHostIo(Napi::Env env, Napi::Object exports) {
  exports.Set("isTerminal", Napi::Function::New(env, IsTerminal, "isTerminal"));
  exports.Set("getRandom", Napi::Function::New(env, GetRandom, "getRandom"));
}

}  // namespace systrap
