// A syscall handler for the runner fast path: getppid answers 7, anything else goes back to the caller.
export function handle(event, regs) {
  if (event.sysno === 110) {
    regs.rax = 7n;
    return true;
  }
  return false;
}
