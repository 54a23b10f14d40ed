package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// appSpec is one app to mount: Mako's -l name:priority:path.
type appSpec struct {
	name string // URL base: "" mounts at /
	prio int
	path string // folder or .zip
}

// settings is everything the command line and the config file decide.
type settings struct {
	addr        string
	admin       string
	tlsAddr     string
	tlsCert     string
	tlsKey      string
	apps        []appSpec
	configFile  string
	reload      bool
	dev         bool
	logLevel    string
	budget      time.Duration
	luaGrowth   int64
	maxMessage  int
	highWater   int
	readHeader  time.Duration
	idleTimeout time.Duration
	ping        time.Duration
	loops       int
	maxConns    int
	maxPerIP    int
	upgradeRate float64
	origins     []string
	needOrigin  bool
}

// listFlag collects a repeatable string flag.
type listFlag struct{ list *[]string }

func (l listFlag) String() string     { return strings.Join(*l.list, ",") }
func (l listFlag) Set(v string) error { *l.list = append(*l.list, v); return nil }

// appFlag collects repeated -l options.
type appFlag struct{ apps *[]appSpec }

func (a appFlag) String() string { return "" }

// Set parses Mako's form: -l [name]:[priority]:path (or just path).
func (a appFlag) Set(v string) error {
	spec, err := parseAppSpec(v)
	if err != nil {
		return err
	}
	*a.apps = append(*a.apps, spec)
	return nil
}

func parseAppSpec(v string) (appSpec, error) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) == 1 {
		return appSpec{path: parts[0]}, nil
	}
	if len(parts) != 3 {
		return appSpec{}, fmt.Errorf("-l %q: want [name]:[priority]:path", v)
	}
	spec := appSpec{name: strings.Trim(parts[0], "/"), path: parts[2]}
	if parts[1] != "" {
		p, err := strconv.Atoi(parts[1])
		if err != nil {
			return appSpec{}, fmt.Errorf("-l %q: priority %q is not a number", v, parts[1])
		}
		spec.prio = p
	}
	if spec.path == "" {
		return appSpec{}, fmt.Errorf("-l %q: no path", v)
	}
	return spec, nil
}

func parseSettings(args []string, stderr io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("tarpon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&s.admin, "admin", "", "admin address for /metrics, /healthz and pprof (off when empty)")
	fs.StringVar(&s.tlsAddr, "tls-addr", "", "HTTPS listen address (needs --tls-cert and --tls-key)")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "PEM certificate for HTTPS")
	fs.StringVar(&s.tlsKey, "tls-key", "", "PEM private key for HTTPS")
	fs.Var(appFlag{&s.apps}, "l", "mount an app: [name]:[priority]:path (folder or .zip); repeatable; default: the embedded examples app")
	fs.StringVar(&s.configFile, "c", "", "Lua configuration file (like mako.conf)")
	fs.BoolVar(&s.reload, "reload", false, "reload apps when their files change")
	fs.BoolVar(&s.dev, "dev", false, "development mode: Lua errors are shown in 500 pages")
	fs.StringVar(&s.logLevel, "log", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&s.budget, "lua-budget", time.Second, "longest a Lua task may run without yielding")
	fs.Int64Var(&s.luaGrowth, "lua-max-growth", 256<<20, "bytes the live heap may grow while one Lua task runs without yielding before it is stopped (negative: no limit)")
	fs.IntVar(&s.maxMessage, "max-message", 16<<20, "largest inbound WebSocket message in bytes (1009 past it)")
	fs.IntVar(&s.highWater, "high-water", 64<<10, "per-connection send queue high-water mark in bytes")
	fs.DurationVar(&s.readHeader, "read-header-timeout", 10*time.Second, "time allowed to read a request's headers")
	fs.DurationVar(&s.idleTimeout, "idle-timeout", 0, "close upgraded connections silent this long (0: never)")
	fs.DurationVar(&s.ping, "ping", 0, "ping WebSocket peers silent this long (0: never)")
	fs.IntVar(&s.loops, "loops", 0, "reactor event loops (0: one per core)")
	fs.IntVar(&s.maxConns, "max-conns", 100_000, "upgraded connections held at once (503 past it)")
	fs.IntVar(&s.maxPerIP, "max-conns-per-ip", 10_000, "upgraded connections per source address (503 past it)")
	fs.Float64Var(&s.upgradeRate, "upgrade-rate", 1000, "new connections per second per source address (429 past it; burst 10x)")
	fs.Var(listFlag{&s.origins}, "allow-origin", "extra browser origin allowed to open WebSockets, glob pattern (repeatable); same-origin is always allowed")
	fs.BoolVar(&s.needOrigin, "require-origin", false, "refuse WebSocket upgrades that carry no Origin header")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if s.configFile != "" {
		if err := s.readConfig(s.configFile); err != nil {
			return nil, err
		}
	}
	if (s.tlsAddr != "") != (s.tlsCert != "" && s.tlsKey != "") {
		return nil, errors.New("--tls-addr needs --tls-cert and --tls-key")
	}
	return s, nil
}

// readConfig reads a Lua config file the way Mako reads mako.conf: a Lua
// script whose globals set the options. Known globals: port, host (or addr),
// adminport/admin, tls = {port=, cert=, key=}, apps = { {name=, path=,
// priority=}, ... }, reload, dev, log. Command-line flags given explicitly
// are overridden by the file.
func (s *settings) readConfig(path string) error {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, unsafe := range []string{"dofile", "loadfile", "require", "module"} {
		L.SetGlobal(unsafe, lua.LNil)
	}
	if err := L.DoFile(path); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	host := "127.0.0.1"
	if v, ok := L.GetGlobal("host").(lua.LString); ok {
		host = string(v)
	}
	if v, ok := L.GetGlobal("addr").(lua.LString); ok {
		s.addr = string(v)
	}
	if v, ok := L.GetGlobal("port").(lua.LNumber); ok {
		s.addr = net.JoinHostPort(host, strconv.Itoa(int(v)))
	}
	if v, ok := L.GetGlobal("admin").(lua.LString); ok {
		s.admin = string(v)
	}
	if v, ok := L.GetGlobal("adminport").(lua.LNumber); ok {
		s.admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(v)))
	}
	if t, ok := L.GetGlobal("tls").(*lua.LTable); ok {
		if p, ok := t.RawGetString("port").(lua.LNumber); ok {
			s.tlsAddr = net.JoinHostPort(host, strconv.Itoa(int(p)))
		}
		s.tlsCert = relTo(base, lua.LVAsString(t.RawGetString("cert")))
		s.tlsKey = relTo(base, lua.LVAsString(t.RawGetString("key")))
	}
	if v, ok := L.GetGlobal("reload").(lua.LBool); ok {
		s.reload = bool(v)
	}
	if v, ok := L.GetGlobal("dev").(lua.LBool); ok {
		s.dev = bool(v)
	}
	if v, ok := L.GetGlobal("log").(lua.LString); ok {
		s.logLevel = string(v)
	}
	if apps, ok := L.GetGlobal("apps").(*lua.LTable); ok {
		var err error
		apps.ForEach(func(_, v lua.LValue) {
			t, ok := v.(*lua.LTable)
			if !ok || err != nil {
				return
			}
			spec := appSpec{
				name: strings.Trim(lua.LVAsString(t.RawGetString("name")), "/"),
				path: relTo(base, lua.LVAsString(t.RawGetString("path"))),
				prio: int(lua.LVAsNumber(t.RawGetString("priority"))),
			}
			if spec.path == "" {
				err = fmt.Errorf("config %s: an app has no path", path)
				return
			}
			s.apps = append(s.apps, spec)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func relTo(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// openApp returns an app's files: a folder, or a zip archive.
func openApp(path string) (fs.FS, io.Closer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return os.DirFS(path), nil, nil
	}
	if strings.EqualFold(filepath.Ext(path), ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr, nil
	}
	return nil, nil, fmt.Errorf("%s is neither a folder nor a .zip", path)
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
