// TEMPORARY placeholder until the summary lands.
export class SyscallSummary { record(_s: number, _e: boolean, _ns: number): void {} format(): string { return ''; } }
