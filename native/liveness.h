// Whether a stub process has exited, for waits that time out and must tell a slow stub from a
// dead one. Shared by every thread of the process (libuv's pool, workers): the registry is
// process-wide, as the addon's statics are.
#ifndef SYSTRAP_LIVENESS_H
#define SYSTRAP_LIVENESS_H

#include <sys/types.h>

namespace systrap {

// ProcessExited: true once `pid` has exited (zombie or reaped). A pid registered with
// trackExit (a stub that is not Node's child: a sandbox's) is judged by its pidfd; any other pid
// must be Node's child, judged by waitid(WNOWAIT), where ECHILD means already reaped.
bool ProcessExited(pid_t pid);

}  // namespace systrap

#endif
