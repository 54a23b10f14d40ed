package runtime

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
)

// MetricsWriter writes Prometheus text-format lines; other packages (the
// scheduler, the broker) plug their figures into the admin endpoint with it.
type MetricsWriter func(w io.Writer)

// AdminHandler serves /metrics (Prometheus text format: the reactor's
// counters, process and Go runtime figures, then extra), /healthz and
// /debug/pprof/. Mount it on a separate, private address.
func AdminHandler(r *Reactor, extra ...MetricsWriter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		WriteProcessMetrics(w)
		if r != nil {
			r.WriteMetrics(w)
		}
		for _, m := range extra {
			m(w)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if r != nil && r.shutting.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// WriteProcessMetrics writes the standard go_* and process_* figures the
// benchmark harness reads: goroutines, heap, GC cycles and pauses, RSS, CPU.
func WriteProcessMetrics(w io.Writer) {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	gauge := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	gauge("go_goroutines", "Number of goroutines that currently exist.", goruntime.NumGoroutine())
	gauge("go_memstats_heap_inuse_bytes", "Heap bytes in use.", ms.HeapInuse)
	gauge("go_memstats_sys_bytes", "Bytes obtained from the OS.", ms.Sys)
	gauge("go_memstats_stack_inuse_bytes", "Stack bytes in use.", ms.StackInuse)
	fmt.Fprintf(w, "# HELP go_gc_cycles_total Completed GC cycles.\n# TYPE go_gc_cycles_total counter\ngo_gc_cycles_total %d\n", ms.NumGC)
	fmt.Fprintf(w, "# HELP go_gc_pause_seconds_total Total GC stop-the-world pause.\n# TYPE go_gc_pause_seconds_total counter\ngo_gc_pause_seconds_total %g\n", float64(ms.PauseTotalNs)/1e9)
	if rss, cpu, fds, ok := procSelf(); ok {
		gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss)
		fmt.Fprintf(w, "# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", cpu)
		gauge("process_open_fds", "Open file descriptors.", fds)
	}
}

// procSelf reads RSS, CPU seconds and open fds from /proc (Linux only).
func procSelf() (rss int64, cpu float64, fds int, ok bool) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(statm))
	if len(f) < 2 {
		return 0, 0, 0, false
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	rss = pages * int64(os.Getpagesize())
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f = strings.Fields(s[i+1:])
		if len(f) > 13 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			cpu = (ut + st) / 100 // USER_HZ is 100 on Linux
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(ents)
	}
	return rss, cpu, fds, true
}
