package scheduler

import (
	"fmt"
	"runtime/metrics"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// The sandbox: what Lua code running in the Loop can reach.
//
//	base       without dofile, loadfile, _printregs; load/loadstring compile
//	           through Loop.Load; print goes to the Logger; collectgarbage
//	           only answers "count" (a full GC on demand is a DoS lever)
//	table, string, math, coroutine (create/resume/wrap replaced, see pcall.go)
//	os         time, clock, date, difftime only (no execute, exit, remove,
//	           rename, tmpname, setlocale, getenv: environment may hold secrets)
//	package    require, package.loaded, package.preload; modules come from
//	           Go (LState.PreloadModule), the file loader is removed
//	absent     io, debug, channel, package.loadlib
//
// Builtins that can allocate without bound in one call are capped at
// Config.MaxString: string.rep, table.concat, string.gsub with a string
// replacement, string.format widths; unpack
// returns at most 8000 values, as in Lua 5.1.
// gopher-lua has no allocation hook, so memory grown step by step (s = s..s
// or t[#t+1] = ... in a loop) is bounded by the memory guard instead: the
// budget watchdog stops a task during whose run the live heap grew by more
// than Config.MaxSliceGrowth (budget.go).
//
// Table bomb: gopher-lua stores t[n] = v for an integer 1 ≤ n <
// lua.MaxArrayIndex in the array part, growing it to n at once, so
// `local t = {} t[60000000] = 1` allocated about 1 GiB (and, padding nil
// by nil, took seconds the budget could not interrupt). MaxArrayIndex is a
// process-wide variable; init lowers it to maxArrayIndex, so one such write
// allocates at most 16 MiB and larger integer keys go to the hash part.
// The trade-off: a sequence built by index assignment (t[i] = v) past
// 2^20 - 1 elements keeps its later elements in the hash part, where the
// length operator #t (and so table.insert/remove/concat/sort without
// explicit bounds) does not see them; ipairs, pairs and t[i] still work.
// Sequences grown with table.insert are not affected.
const maxArrayIndex = 1 << 20

func init() {
	// At package init, before any VM exists: the variable is read by every
	// LState without synchronisation.
	if lua.MaxArrayIndex > maxArrayIndex {
		lua.MaxArrayIndex = maxArrayIndex
	}
}

func (l *Loop) openLibs() error {
	L := l.l
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
		{lua.OsLibName, lua.OpenOs},
		{lua.LoadLibName, lua.OpenPackage},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}

	g := L.G.Global
	for _, name := range []string{"dofile", "loadfile", "_printregs", "module"} {
		g.RawSetString(name, lua.LNil)
	}
	g.RawSetString("load", L.NewFunction(l.baseLoad))
	g.RawSetString("loadstring", L.NewFunction(l.baseLoadString))
	g.RawSetString("print", L.NewFunction(l.basePrint))
	g.RawSetString("collectgarbage", L.NewFunction(baseCollectGarbage))

	if os, ok := g.RawGetString("os").(*lua.LTable); ok {
		keep := map[string]bool{"time": true, "clock": true, "date": true, "difftime": true}
		var drop []string
		os.ForEach(func(k, _ lua.LValue) {
			if !keep[k.String()] {
				drop = append(drop, k.String())
			}
		})
		for _, k := range drop {
			os.RawSetString(k, lua.LNil)
		}
	}
	if pkg, ok := g.RawGetString("package").(*lua.LTable); ok {
		pkg.RawSetString("loadlib", lua.LNil)
		pkg.RawSetString("seeall", lua.LNil)
		pkg.RawSetString("path", lua.LString(""))
		pkg.RawSetString("cpath", lua.LString(""))
		if loaders, ok := pkg.RawGetString("loaders").(*lua.LTable); ok {
			// [1] is the preload loader; drop the file loader(s).
			for i := loaders.Len(); i > 1; i-- {
				loaders.RawSetInt(i, lua.LNil)
			}
		}
	}

	if str, ok := g.RawGetString("string").(*lua.LTable); ok {
		l.capString(str)
	}
	// unpack pushes one value at a time and gopher-lua grows the registry
	// linearly, so a huge range is quadratic; Lua 5.1 itself refuses more
	// than its C stack limit (LUAI_MAXCSTACK, 8000).
	unpack := g.RawGetString("unpack")
	g.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		i := L.OptInt(2, 1)
		j := L.OptInt(3, t.Len())
		if j >= i && int64(j)-int64(i) >= maxUnpack {
			L.RaiseError("too many results to unpack")
			return 0
		}
		return l.callOrig(L, unpack)
	}))
	if tab, ok := g.RawGetString("table").(*lua.LTable); ok {
		orig := tab.RawGetString("concat")
		tab.RawSetString("concat", L.NewFunction(func(L *lua.LState) int {
			l.checkConcat(L)
			return l.callOrig(L, orig)
		}))
	}
	if err := l.openPcall(); err != nil {
		return err
	}
	l.openBa()
	return nil
}

// maxUnpack is the most values unpack returns (Lua 5.1's LUAI_MAXCSTACK).
const maxUnpack = 8000

// callOrig tail-calls a wrapped builtin with the same arguments.
func (l *Loop) callOrig(L *lua.LState, orig lua.LValue) int {
	fn := orig.(*lua.LFunction)
	return fn.GFunction(L)
}

func (l *Loop) capString(str *lua.LTable) {
	L := l.l
	str.RawSetString("rep", L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		n := L.CheckInt(2)
		sep := L.OptString(3, "")
		if n <= 0 || len(s)+len(sep) == 0 {
			L.Push(lua.LString(""))
			return 1
		}
		if n > l.cfg.MaxString { // also keeps the size product below from overflowing
			L.RaiseError("string.rep: result exceeds the %d byte limit", l.cfg.MaxString)
			return 0
		}
		if size := int64(len(s)+len(sep))*int64(n) - int64(len(sep)); size > int64(l.cfg.MaxString) {
			L.RaiseError("string.rep: result of %d bytes exceeds the %d byte limit", size, l.cfg.MaxString)
			return 0
		}
		if sep == "" {
			L.Push(lua.LString(strings.Repeat(s, n)))
			return 1
		}
		var b strings.Builder
		b.Grow((len(s)+len(sep))*n - len(sep))
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(s)
		}
		L.Push(lua.LString(b.String()))
		return 1
	}))
	gsub := str.RawGetString("gsub")
	str.RawSetString("gsub", L.NewFunction(func(L *lua.LState) int {
		l.checkGsub(L)
		return l.callOrig(L, gsub)
	}))
	format := str.RawGetString("format")
	str.RawSetString("format", L.NewFunction(func(L *lua.LState) int {
		if err := checkFormat(L.CheckString(1)); err != "" {
			L.RaiseError("string.format: %s", err)
			return 0
		}
		return l.callOrig(L, format)
	}))
}

// checkGsub raises if string.gsub(s, pat, repl [, n]) with a string repl
// could produce more than MaxString bytes. The cheap worst case (every
// position matches) settles most calls; otherwise the matches are counted.
// A "%d" in repl can insert a whole match, hence the bound per match.
func (l *Loop) checkGsub(L *lua.LState) {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	repl, ok := L.Get(3).(lua.LString)
	if !ok {
		return // function and table replacements are bounded by the run budget
	}
	limit := L.OptInt(4, -1)
	perMatch := func(matchLen int) int64 {
		return int64(len(repl)) + int64(strings.Count(string(repl), "%"))*int64(matchLen)
	}
	n := int64(len(src) + 1)
	if limit >= 0 && int64(limit) < n {
		n = int64(limit)
	}
	if int64(len(src))+n*perMatch(len(src)) <= int64(l.cfg.MaxString) {
		return
	}
	mds, err := pm.Find(pat, []byte(src), 0, limit)
	if err != nil {
		return // the real gsub reports the pattern error
	}
	total := int64(len(src))
	for _, md := range mds {
		if md.CaptureLength() >= 2 {
			total += perMatch(md.Capture(1) - md.Capture(0))
		}
		if total > int64(l.cfg.MaxString) {
			L.RaiseError("string.gsub: result exceeds the %d byte limit", l.cfg.MaxString)
		}
	}
}

// checkFormat applies Lua 5.1's rule that a width or precision has at most
// two digits (gopher-lua passes the format to fmt.Sprintf unchecked, so
// "%999999999d" would allocate gigabytes).
func checkFormat(f string) string {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		// gopher-lua hands the format to Go's fmt, where "[n]" picks an
		// argument. Lua has no such thing, and a bracket there would make
		// fmt split the directives elsewhere than this scan does (found by
		// FuzzCheckFormat: "%[%%7000A" is a 7000-wide field to fmt).
		if i < len(f) && f[i] == '[' {
			return "invalid format ('[' not supported)"
		}
		digits := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
			digits++
		}
		if digits > 2 {
			return "invalid format (width or precision too long)"
		}
		if i < len(f) && f[i] == '.' {
			i++
			digits = 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
				digits++
			}
			if digits > 2 {
				return "invalid format (width or precision too long)"
			}
		}
		if i < len(f) && f[i] == '*' {
			return "invalid format ('*' not supported)"
		}
		if i < len(f) && f[i] == '[' {
			return "invalid format ('[' not supported)"
		}
	}
	return ""
}

// checkConcat raises if table.concat(t, sep, i, j) would exceed MaxString.
func (l *Loop) checkConcat(L *lua.LState) {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	if j-i > l.cfg.MaxString {
		L.RaiseError("table.concat: range of %d elements exceeds the limit", j-i+1)
	}
	total := 0
	for k := i; k <= j; k++ {
		if s, ok := t.RawGetInt(k).(lua.LString); ok {
			total += len(s)
		} else {
			total += 24 // a number's text
		}
		if k < j {
			total += len(sep)
		}
		if total > l.cfg.MaxString {
			L.RaiseError("table.concat: result exceeds the %d byte limit", l.cfg.MaxString)
		}
	}
}

// basePrint sends print output to the Logger at info level.
func (l *Loop) basePrint(L *lua.LState) int {
	top := L.GetTop()
	parts := make([]string, 0, top)
	for i := 1; i <= top; i++ {
		parts = append(parts, L.ToStringMeta(L.Get(i)).String())
	}
	l.log.Info(strings.Join(parts, "\t"), "src", "lua print")
	return 0
}

// baseCollectGarbage answers collectgarbage("count") with the Go heap size
// in KiB; other options are accepted and do nothing.
func baseCollectGarbage(L *lua.LState) int {
	switch opt := L.OptString(1, "collect"); opt {
	case "count":
		L.Push(lua.LNumber(float64(heapAlloc()) / 1024))
		return 1
	case "collect", "step", "stop", "restart", "setpause", "setstepmul":
		L.Push(lua.LNumber(0))
		return 1
	default:
		L.ArgError(1, fmt.Sprintf("invalid option '%s'", opt))
		return 0
	}
}

func heapAlloc() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}
