// cpuClockNs: the CPU time of processes, precise to the nanosecond, from their CPU clocks. A
// program process runs on several stub threads, each a process of its own: its CPU time is
// theirs together (src/sentry/kernel/cpuClock.ts). /proc's stat counts in 10 ms ticks; the
// kernel's CPU clocks (clock_gettime of MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)) count
// nanoseconds, one syscall per process, no file to open.
#include <time.h>

#include <cerrno>

#include "errors.h"

namespace systrap {

// The kernel's clock id of process `pid`'s whole CPU time (include/linux/posix-timers.h).
static clockid_t ProcessCpuClock(pid_t pid) { return (clockid_t)((~(unsigned)pid) << 3) | 2; }

// cpuClockNs(pids: number[]) -> bigint: the CPU time of the processes together, in ns. A
// process that is gone adds nothing (its time is lost with it, as its stub's is at its end).
static Napi::Value CpuClockNs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowType(env, "pids must be an array of numbers");
  Napi::Array pids = info[0].As<Napi::Array>();
  uint64_t total = 0;
  for (uint32_t i = 0; i < pids.Length(); i++) {
    Napi::Value v = pids.Get(i);
    if (!v.IsNumber()) ThrowType(env, "pids must be an array of numbers");
    int64_t pid = v.As<Napi::Number>().Int64Value();
    if (pid <= 0 || pid > 0x3fffffff) throw Napi::RangeError::New(env, "a pid must be in 1..2^30-1");
    struct timespec ts;
    if (clock_gettime(ProcessCpuClock((pid_t)pid), &ts) == 0) total += (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  }
  return Napi::BigInt::New(env, total);
}

void InitCpuClock(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuClockNs", Napi::Function::New(env, CpuClockNs, "cpuClockNs"));
}

}  // namespace systrap
