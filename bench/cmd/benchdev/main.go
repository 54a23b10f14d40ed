// Command benchdev is a development stand-in for cmd/tarpon's bench
// sub-commands: benchdev bench|bench-peer|bench-worker ARGS...
package main

import (
	"fmt"
	"os"

	"github.com/tarponrt/tarpon/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchdev bench|bench-peer|bench-worker ARGS...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "bench":
		os.Exit(bench.Main(args))
	case bench.PeerCommand:
		os.Exit(bench.PeerMain(args))
	case bench.WorkerCommand:
		os.Exit(bench.WorkerMain(args))
	default:
		fmt.Fprintf(os.Stderr, "benchdev: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
