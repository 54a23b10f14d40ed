package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux the Go toolchain supports (sysconf would need cgo).
const clockTick = 10 * time.Millisecond

// ProcSample is one reading of a process from /proc.
type ProcSample struct {
	RSS     uint64        // resident set, bytes (VmRSS)
	CPU     time.Duration // utime + stime, all threads, 10 ms resolution
	Threads int
	FDs     int    // open descriptors
	FDLimit uint64 // soft RLIMIT_NOFILE ("Max open files")
}

// ReadProc reads pid's RSS, CPU, threads and descriptors from /proc.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	if pid <= 0 {
		return s, errors.New("bench: no server pid")
	}
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	s.RSS, err = parseVmRSS(status)
	if err != nil {
		return s, err
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	s.CPU, s.Threads, err = parseStat(stat)
	if err != nil {
		return s, err
	}
	if ents, err := os.ReadDir(dir + "/fd"); err == nil {
		s.FDs = len(ents)
	}
	if lim, err := os.ReadFile(dir + "/limits"); err == nil {
		s.FDLimit = parseFDLimit(lim)
	}
	return s, nil
}

// parseVmRSS extracts VmRSS (kB) from /proc/<pid>/status, in bytes.
func parseVmRSS(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: VmRSS %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("bench: no VmRSS in status")
}

// parseStat extracts utime+stime and num_threads from /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted after the last ')'.
func parseStat(stat []byte) (time.Duration, int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("bench: malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, threads 20.
	if len(f) < 18 {
		return 0, 0, errors.New("bench: short stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	th, err3 := strconv.Atoi(f[17])
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("bench: stat: %w", err)
	}
	return time.Duration(ut+st) * clockTick, th, nil
}

// parseFDLimit extracts the soft "Max open files" from /proc/<pid>/limits.
func parseFDLimit(limits []byte) uint64 {
	for _, line := range strings.Split(string(limits), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// selfCPU is this process's user+system CPU time (getrusage, µs resolution).
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perConn is (loaded - baseline) / n, the idle scenario's per-connection
// figure; it is 0 for n <= 0 and may be negative when the baseline was
// noisy (reported as measured, never clamped silently).
func perConn(loaded, baseline float64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return (loaded - baseline) / float64(n)
}
