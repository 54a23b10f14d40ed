package runtime

import "golang.org/x/sys/unix"

// maxFDTableHint caps growFDTable: 65,536 descriptors cost the kernel about
// half a megabyte of table, and past that growth stalls are rare enough.
const maxFDTableHint = 1 << 16

// growFDTable makes the kernel size the process's descriptor table for
// about want descriptors now, once, instead of doubling it while
// connections arrive.
//
// Why it matters: every hand-off duplicates the socket (gnet's Enroll) on
// the HTTP goroutine that upgraded it, so during a burst dozens of
// goroutines allocate descriptors at the same moment. When the table has
// to double, Linux waits for an RCU grace period (milliseconds) while the
// other allocations wait on the resize; the Go scheduler then gives each
// stalled goroutine's processor a new OS thread. Threads are never freed,
// and each keeps a 32 KiB signal stack plus its own stack pages: measured
// on 10,000 connections, 20 to 30 extra threads and about 0.1 KiB per
// connection of RSS that nbio (one accepting goroutine) does not pay.
// The table is kernel memory (8 bytes and 2 bits a slot), and Linux never
// shrinks it, so growing it early costs nothing later.
//
// It duplicates a descriptor to the number want-1 and closes it at once;
// any failure (a lower limit, no /dev/null) leaves things as they were.
func growFDTable(want int) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < uint64(want) {
		want = int(lim.Cur)
	}
	want = min(want, maxFDTableHint)
	if want <= 64 {
		return // the table every process starts with
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, want-1); err == nil {
		_ = unix.Close(hi)
	}
}
