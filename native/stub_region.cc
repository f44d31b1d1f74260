// The stub region in Node's own address space (gVisor's stubInit). It is mapped once per process
// at a high address above STUB_MAX_USER_ADDRESS, so that a stub forked from Node inherits it at
// the same address; the stub then unmaps everything else. Only the code part is accessible; the
// rest of the region is reserved PROT_NONE so that no Node mapping can sit there (it would
// survive into every stub).
#include <sys/mman.h>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "errors.h"
#include "stub/stub_abi.h"

// Section systrap_stub holds all the stub code (stub.S and sysmsg.c); the linker provides its
// bounds. It is copied whole, so offsets inside it are what the stub region uses.
extern "C" {
extern const char __start_systrap_stub[];
extern const char __stop_systrap_stub[];
extern const char systrap_stub_init[];
extern const char systrap_stub_syscall[];
extern const char systrap_restore_rt[];
extern const char systrap_syscall_gadget[];
extern const char systrap_syshandler[];
extern const char systrap_ring_syscall_ret[];
void systrap_sighandler(int, uint8_t*, void*);
}

namespace systrap {

// Process-wide by design (not per addon instance): there is one Node address space, so one
// stub region, shared by the main thread and every worker. Guarded by regionMu.
static std::mutex regionMu;
static uintptr_t regionStart = 0;

static bool TryMap(uintptr_t addr) {
  void* p = mmap(reinterpret_cast<void*>(addr), STUB_REGION_SIZE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return false;
  if (reinterpret_cast<uintptr_t>(p) != addr) {  // pre-4.17 kernels ignore NOREPLACE
    munmap(p, STUB_REGION_SIZE);
    return false;
  }
  return true;
}

// Holes in /proc/self/maps inside [lo, hi) large enough for the region.
static std::vector<std::pair<uintptr_t, uintptr_t>> Holes(uintptr_t lo, uintptr_t hi) {
  std::vector<std::pair<uintptr_t, uintptr_t>> holes;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t prevEnd = lo;
  while (std::getline(maps, line)) {
    uintptr_t s = 0, e = 0;
    char dash;
    std::istringstream in(line);
    in >> std::hex >> s >> dash >> e;
    if (e <= lo) continue;
    if (s >= hi) break;
    if (s > prevEnd && s - prevEnd >= STUB_REGION_SIZE) holes.push_back({prevEnd, s});
    if (e > prevEnd) prevEnd = e;
  }
  if (hi > prevEnd && hi - prevEnd >= STUB_REGION_SIZE) holes.push_back({prevEnd, hi});
  return holes;
}

uintptr_t StubRegionStart() {
  std::lock_guard<std::mutex> g(regionMu);
  return regionStart;
}

// Where a stub starts executing: stub_init inside the copied section.
uintptr_t StubEntry() {
  std::lock_guard<std::mutex> g(regionMu);
  return regionStart == 0 ? 0 : regionStart + (systrap_stub_init - __start_systrap_stub);
}

// stubRegionInit() -> { start, roEnd, end, initOffset, syscallOffset }: maps the region once.
static Napi::Value StubRegionInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> g(regionMu);
  if (regionStart == 0) {
    size_t codeLen = __stop_systrap_stub - __start_systrap_stub;
    if (codeLen > STUB_RO_SIZE) throw Napi::Error::New(env, "stub code does not fit in the stub region");
    const uintptr_t lo = STUB_MAX_USER_ADDRESS;
    const uintptr_t hi = STUB_TASK_SIZE - STUB_REGION_SIZE;
    std::random_device rd;
    std::mt19937_64 rng(rd());
    uintptr_t addr = 0;
    // First a random page in the window, then random holes found in /proc/self/maps.
    for (int attempt = 0; attempt < 32 && addr == 0; attempt++) {
      uintptr_t cand;
      if (attempt == 0) {
        cand = lo + (rng() % ((hi - lo) / 4096)) * 4096;
      } else {
        auto holes = Holes(lo, hi + STUB_REGION_SIZE);
        if (holes.empty()) break;
        auto& h = holes[rng() % holes.size()];
        uintptr_t span = (h.second - h.first - STUB_REGION_SIZE) / 4096;
        cand = h.first + (span ? rng() % span : 0) * 4096;
      }
      if (TryMap(cand)) addr = cand;
    }
    if (addr == 0) throw Napi::Error::New(env, "no room for the stub region above the application's maximum address");
    if (mprotect(reinterpret_cast<void*>(addr), STUB_RO_SIZE, PROT_READ | PROT_WRITE) == -1)
      ThrowErrno(env, errno, "mprotect");
    memcpy(reinterpret_cast<void*>(addr), __start_systrap_stub, codeLen);
    if (mprotect(reinterpret_cast<void*>(addr), STUB_RO_SIZE, PROT_READ | PROT_EXEC) == -1)
      ThrowErrno(env, errno, "mprotect");
    regionStart = addr;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("start", Napi::BigInt::New(env, (uint64_t)regionStart));
  o.Set("roEnd", Napi::BigInt::New(env, (uint64_t)(regionStart + STUB_RO_SIZE)));
  o.Set("end", Napi::BigInt::New(env, (uint64_t)(regionStart + STUB_REGION_SIZE)));
  auto off = [](const void* p) { return (double)(static_cast<const char*>(p) - __start_systrap_stub); };
  o.Set("initOffset", Napi::Number::New(env, off(systrap_stub_init)));
  o.Set("syscallOffset", Napi::Number::New(env, off(systrap_stub_syscall)));
  o.Set("sighandlerOffset", Napi::Number::New(env, off(reinterpret_cast<const void*>(&systrap_sighandler))));
  o.Set("restorerOffset", Napi::Number::New(env, off(systrap_restore_rt)));
  o.Set("gadgetOffset", Napi::Number::New(env, off(systrap_syscall_gadget)));
  o.Set("syshandlerOffset", Napi::Number::New(env, off(systrap_syshandler)));
  o.Set("ringSyscallOffset", Napi::Number::New(env, off(systrap_ring_syscall_ret)));
  return o;
}

void InitStubRegion(Napi::Env env, Napi::Object exports) {
  exports.Set("stubRegionInit", Napi::Function::New(env, StubRegionInit));
  Napi::Object k = Napi::Object::New(env);
  k.Set("STUB_MEMFD", STUB_MEMFD);
  k.Set("STUB_FDCHAN", STUB_FDCHAN);
  k.Set("STUB_RO_SIZE", STUB_RO_SIZE);
  k.Set("STUB_REGION_SIZE", STUB_REGION_SIZE);
  k.Set("STUB_MAX_USER_ADDRESS", Napi::BigInt::New(env, (uint64_t)STUB_MAX_USER_ADDRESS));
  k.Set("STUB_TASK_SIZE", Napi::BigInt::New(env, (uint64_t)STUB_TASK_SIZE));
  k.Set("STUB_RULES_OFFSET", STUB_RULES_OFFSET);
  k.Set("STUB_RULES_SIZE", STUB_RULES_SIZE);
  k.Set("STUB_PER_THREAD_MEM_SIZE", STUB_PER_THREAD_MEM_SIZE);
  k.Set("STUB_MAX_THREAD_SLOTS", STUB_MAX_THREAD_SLOTS);
  k.Set("STUB_THREADS_MIN_OFFSET", STUB_THREADS_MIN_OFFSET);
  k.Set("STUB_QUEUE_OFFSET", STUB_QUEUE_OFFSET);
  k.Set("STUB_QUEUE_SIZE", STUB_QUEUE_SIZE);
  k.Set("STUB_CONTEXTS_OFFSET", STUB_CONTEXTS_OFFSET);
  k.Set("STUB_TRACE_RING_OFFSET", STUB_TRACE_RING_OFFSET);
  k.Set("STUB_TRACE_RING_DATA", STUB_TRACE_RING_DATA);
  k.Set("STUB_TRACE_RING_SIZE", STUB_TRACE_RING_SIZE);
  k.Set("STUB_TRACE_SPEC_OFFSET", STUB_TRACE_SPEC_OFFSET);
  k.Set("STUB_MODE_TRAP", STUB_MODE_TRAP);
  k.Set("STUB_MODE_NEW_STUB", STUB_MODE_NEW_STUB);
  k.Set("STUB_MODE_RUN_SYSCALL_LOOP", STUB_MODE_RUN_SYSCALL_LOOP);
  k.Set("SYSMSG_STATE", SYSMSG_STATE);
  k.Set("SYSMSG_SYSNO", SYSMSG_SYSNO);
  k.Set("SYSMSG_ARGS", SYSMSG_ARGS);
  k.Set("SYSMSG_REPLY", SYSMSG_REPLY);
  k.Set("SYSMSG_DONE", SYSMSG_DONE);
  k.Set("SYSMSG_SPIN", SYSMSG_SPIN);
  k.Set("SYSMSG_OWNER", SYSMSG_OWNER);
  k.Set("SYSMSG_OWNER_WAITERS", SYSMSG_OWNER_WAITERS);
  k.Set("STUB_REQUEST_NEW_THREAD", STUB_REQUEST_NEW_THREAD);
  k.Set("STUB_REQUEST_FORK", STUB_REQUEST_FORK);
  k.Set("STUB_REQUEST_BATCH", STUB_REQUEST_BATCH);
  k.Set("SYSMSG_BATCH", SYSMSG_BATCH);
  k.Set("SYSMSG_BATCH_ENTRY", SYSMSG_BATCH_ENTRY);
  k.Set("SYSMSG_BATCH_MAX", SYSMSG_BATCH_MAX);
  k.Set("SYSMSG_BATCH_STOP", SYSMSG_BATCH_STOP);
  k.Set("SYSMSG_BATCH_RESULTS", SYSMSG_BATCH_RESULTS);
  k.Set("SYSMSG_THREAD_SIGNALS", SYSMSG_THREAD_SIGNALS);
  k.Set("SYSMSG_THREAD_MASK", SYSMSG_THREAD_MASK);
  k.Set("SYSMSG_FORK_REPLY", SYSMSG_FORK_REPLY);
  k.Set("SYSMSG_FORK_DONE", SYSMSG_FORK_DONE);
  k.Set("SYSMSG_FORK_ACK", SYSMSG_FORK_ACK);
  k.Set("SYSMSG_SPIN_CYCLES", SYSMSG_SPIN_CYCLES);
  k.Set("SYSMSG_SIZE", SYSMSG_SIZE);
  exports.Set("stubAbi", k);
}

}  // namespace systrap
