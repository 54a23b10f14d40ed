package scheduler

import (
	"fmt"
	"io"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Loading Lua source.
//
// gopher-lua calls a generic-for iterator from a nested Go call
// (OP_TFORLOOP), so an iterator that parks (for line in sock:lines()) would
// corrupt its coroutine. Code loaded through the Loop is therefore compiled
// from a rewritten syntax tree: each generic for becomes the loop the Lua 5.1
// manual gives as its meaning,
//
//	do
//	  local (for f), (for s), (for v) = explist
//	  while true do
//	    local var_1, ..., var_n = (for f)((for s), (for v))
//	    if var_1 == nil then break end
//	    (for v) = var_1
//	    block
//	  end
//	end
//
// whose iterator call is an ordinary CALL and so may yield. The hidden
// names cannot clash with Lua identifiers.

// Load compiles Lua source read from r into a function whose environment
// is the VM's globals. name is the chunk name used in error messages; a
// leading "=" or "@" (Lua's conventions) is dropped. VM goroutine only
// (compilation itself touches no VM state, but the function belongs to it).
func (l *Loop) Load(r io.Reader, name string) (*lua.LFunction, error) {
	proto, err := Compile(r, name)
	if err != nil {
		return nil, err
	}
	return l.l.NewFunctionFromProto(proto), nil
}

// Compile parses and compiles Lua source into a prototype the way Load does
// (generic-for loops rewritten so their iterators may park), without an
// LState: packages that cache compiled code (LSP pages) use it. Safe for
// concurrent use.
func Compile(r io.Reader, name string) (*lua.FunctionProto, error) {
	if strings.HasPrefix(name, "=") || strings.HasPrefix(name, "@") {
		name = name[1:]
	}
	chunk, err := parse.Parse(r, name)
	if err != nil {
		return nil, err
	}
	rewriteStmts(chunk)
	return lua.Compile(chunk, name)
}

// LoadString is Load for a string. VM goroutine only.
func (l *Loop) LoadString(src, name string) (*lua.LFunction, error) {
	return l.Load(strings.NewReader(src), name)
}

func (l *Loop) compileString(src, name string) (*lua.LFunction, error) {
	return l.LoadString(src, name)
}

func rewriteStmts(stmts []ast.Stmt) {
	for i, s := range stmts {
		stmts[i] = rewriteStmt(s)
	}
}

func rewriteStmt(s ast.Stmt) ast.Stmt {
	switch s := s.(type) {
	case *ast.AssignStmt:
		rewriteExprs(s.Lhs)
		rewriteExprs(s.Rhs)
	case *ast.LocalAssignStmt:
		rewriteExprs(s.Exprs)
	case *ast.FuncCallStmt:
		rewriteExpr(s.Expr)
	case *ast.DoBlockStmt:
		rewriteStmts(s.Stmts)
	case *ast.WhileStmt:
		rewriteExpr(s.Condition)
		rewriteStmts(s.Stmts)
	case *ast.RepeatStmt:
		rewriteExpr(s.Condition)
		rewriteStmts(s.Stmts)
	case *ast.IfStmt:
		rewriteExpr(s.Condition)
		rewriteStmts(s.Then)
		rewriteStmts(s.Else)
	case *ast.NumberForStmt:
		rewriteExpr(s.Init)
		rewriteExpr(s.Limit)
		rewriteExpr(s.Step)
		rewriteStmts(s.Stmts)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			rewriteExpr(s.Name.Func)
			rewriteExpr(s.Name.Receiver)
		}
		rewriteExpr(s.Func)
	case *ast.ReturnStmt:
		rewriteExprs(s.Exprs)
	case *ast.GenericForStmt:
		rewriteExprs(s.Exprs)
		rewriteStmts(s.Stmts)
		return genericFor(s)
	}
	return s
}

func rewriteExprs(es []ast.Expr) {
	for _, e := range es {
		rewriteExpr(e)
	}
}

func rewriteExpr(e ast.Expr) {
	switch e := e.(type) {
	case *ast.AttrGetExpr:
		rewriteExpr(e.Object)
		rewriteExpr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			rewriteExpr(f.Key)
			rewriteExpr(f.Value)
		}
	case *ast.FuncCallExpr:
		rewriteExpr(e.Func)
		rewriteExpr(e.Receiver)
		rewriteExprs(e.Args)
	case *ast.LogicalOpExpr:
		rewriteExpr(e.Lhs)
		rewriteExpr(e.Rhs)
	case *ast.RelationalOpExpr:
		rewriteExpr(e.Lhs)
		rewriteExpr(e.Rhs)
	case *ast.StringConcatOpExpr:
		rewriteExpr(e.Lhs)
		rewriteExpr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		rewriteExpr(e.Lhs)
		rewriteExpr(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		rewriteExpr(e.Expr)
	case *ast.UnaryNotOpExpr:
		rewriteExpr(e.Expr)
	case *ast.UnaryLenOpExpr:
		rewriteExpr(e.Expr)
	case *ast.FunctionExpr:
		rewriteStmts(e.Stmts)
	}
}

// genericFor builds the while-loop equivalent of a generic for (see above).
func genericFor(s *ast.GenericForStmt) ast.Stmt {
	line, last := s.Line(), s.LastLine()
	at := func(n interface {
		SetLine(int)
		SetLastLine(int)
	}) {
		n.SetLine(line)
		n.SetLastLine(last)
	}
	ident := func(name string) *ast.IdentExpr {
		e := &ast.IdentExpr{Value: name}
		at(e)
		return e
	}
	const fName, sName, vName = "(for f)", "(for s)", "(for v)"

	hidden := &ast.LocalAssignStmt{Names: []string{fName, sName, vName}, Exprs: s.Exprs}
	at(hidden)

	call := &ast.FuncCallExpr{Func: ident(fName), Args: []ast.Expr{ident(sName), ident(vName)}}
	at(call)
	vars := &ast.LocalAssignStmt{Names: s.Names, Exprs: []ast.Expr{call}}
	at(vars)

	isNil := &ast.RelationalOpExpr{Operator: "==", Lhs: ident(s.Names[0]), Rhs: &ast.NilExpr{}}
	at(isNil)
	brk := &ast.BreakStmt{}
	at(brk)
	stop := &ast.IfStmt{Condition: isNil, Then: []ast.Stmt{brk}}
	at(stop)

	save := &ast.AssignStmt{Lhs: []ast.Expr{ident(vName)}, Rhs: []ast.Expr{ident(s.Names[0])}}
	at(save)

	body := make([]ast.Stmt, 0, len(s.Stmts)+3)
	body = append(body, vars, stop, save)
	body = append(body, s.Stmts...)
	t := &ast.TrueExpr{}
	at(t)
	loop := &ast.WhileStmt{Condition: t, Stmts: body}
	at(loop)

	blk := &ast.DoBlockStmt{Stmts: []ast.Stmt{hidden, loop}}
	at(blk)
	return blk
}

// loadChunk implements Lua's load/loadstring through Load: returns the
// function, or nil and the message.
func (l *Loop) loadChunk(L *lua.LState, src, name string) int {
	fn, err := l.LoadString(src, name)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(fn)
	return 1
}

// baseLoadString is loadstring(s [, chunkname]).
func (l *Loop) baseLoadString(L *lua.LState) int {
	src := L.CheckString(1)
	name := L.OptString(2, "<string>")
	if len(src) > l.cfg.MaxString {
		L.RaiseError("loadstring: chunk larger than %d bytes", l.cfg.MaxString)
	}
	return l.loadChunk(L, src, chunkName(name))
}

// baseLoad is load(func|string [, chunkname]): a function is called until it
// returns nil or "" and the pieces are joined.
func (l *Loop) baseLoad(L *lua.LState) int {
	switch v := L.Get(1).(type) {
	case lua.LString:
		return l.loadChunk(L, string(v), chunkName(L.OptString(2, "<string>")))
	case *lua.LFunction:
		var b strings.Builder
		for {
			L.Push(v)
			L.Call(0, 1)
			piece := L.Get(-1)
			L.Pop(1)
			s, ok := piece.(lua.LString)
			if piece == lua.LNil || (ok && s == "") {
				break
			}
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
			if b.Len()+len(s) > l.cfg.MaxString {
				L.RaiseError("load: chunk larger than %d bytes", l.cfg.MaxString)
			}
			b.WriteString(string(s))
		}
		return l.loadChunk(L, b.String(), chunkName(L.OptString(2, "=load")))
	default:
		L.ArgError(1, fmt.Sprintf("string or function expected, got %s", v.Type()))
		return 0
	}
}

// chunkName is the name used in messages: Lua's "=name"/"@name" prefixes are
// dropped, and a source used as its own name is cut to its first line.
func chunkName(name string) string {
	if strings.HasPrefix(name, "=") || strings.HasPrefix(name, "@") {
		return name[1:]
	}
	if i := strings.IndexByte(name, '\n'); i >= 0 {
		name = name[:i] + "..."
	}
	if len(name) > 60 {
		name = name[:57] + "..."
	}
	return name
}
