// What native/forker.cc shares with the other fork path (native/sandbox.cc): the forker thread,
// the fd channel registry and the child-side setup of a stub process.
#ifndef SYSTRAP_FORKER_H
#define SYSTRAP_FORKER_H

namespace systrap {

// Runs job(arg) on the forker thread (started on first use) and returns once it has returned.
// For code that clones a child whose PR_SET_PDEATHSIG must follow Node's lifetime: the signal
// fires when the *thread* that cloned the child exits, and this thread lives as long as Node.
void RunOnForkerThread(void (*job)(void*), void* arg);

// Registers Node's end of a stub's fd channel under that stub's pid (as Node sees it), so that
// sendFds(pid, fds) reaches it and closeFdChannel(pid) closes it. Takes ownership of fd.
void RegisterFdChannel(long pid, int fd);

// Child side, raw syscalls only: makes the calling process a stub process (a session of its own,
// default signal dispositions, an fd table of exactly `memfd` at STUB_MEMFD and `chan` at
// STUB_FDCHAN, an empty signal mask). Exits the process if that fails.
void StubChildSetup(int memfd, int chan);

}  // namespace systrap

#endif
