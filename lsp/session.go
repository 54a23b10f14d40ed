package lsp

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// session is one in-memory session. Scheduler goroutine only (it lives in
// vmState.sessions).
type session struct {
	id      string
	tbl     *lua.LTable
	last    time.Time
	timeout time.Duration
}

// sweepSessions drops expired sessions, at most once a minute.
func (s *Server) sweepSessions(now time.Time) {
	if now.Sub(s.vm.lastSweep) < time.Minute {
		return
	}
	s.vm.lastSweep = now
	for id, ss := range s.vm.sessions {
		if now.Sub(ss.last) > ss.timeout {
			delete(s.vm.sessions, id)
		}
	}
}

// reqSession implements request:session([create]): the session table of the
// request's session cookie, a new one (with a Set-Cookie) when create is
// true, or nil. The table is used like any table; s:id(), s:terminate() and
// s:maxinactiveinterval([seconds]) come from its metatable.
func reqSession(L *lua.LState) int {
	q := checkRequest(L, false)
	s := q.s
	now := time.Now()
	s.sweepSessions(now)
	id := q.sessionID
	if id == "" {
		if c, err := q.r.Cookie(s.opts.SessionCookie); err == nil {
			id = c.Value
		}
	}
	if ss := s.vm.sessions[id]; ss != nil && now.Sub(ss.last) <= ss.timeout {
		ss.last = now
		q.sessionID = id
		L.Push(ss.tbl)
		return 1
	}
	if !L.OptBool(2, false) || !q.active {
		L.Push(lua.LNil)
		return 1
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id = hex.EncodeToString(raw[:])
	ss := &session{id: id, tbl: L.NewTable(), last: now, timeout: s.opts.SessionTimeout}
	ss.tbl.Metatable = s.vm.sessionMeta
	s.vm.sessions[id] = ss
	s.vm.sessionOf[ss.tbl] = ss
	q.sessionID = id
	q.header.Add("Set-Cookie", (&http.Cookie{
		Name: s.opts.SessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}).String())
	L.Push(ss.tbl)
	return 1
}

// sessionMethods back the session table's metatable __index.
func (s *Server) sessionMethods(L *lua.LState) *lua.LTable {
	get := func(L *lua.LState) *session {
		t := L.CheckTable(1)
		ss := s.vm.sessionOf[t]
		if ss == nil {
			L.RaiseError("session has been terminated")
		}
		return ss
	}
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"id": func(L *lua.LState) int { L.Push(lua.LString(get(L).id)); return 1 },
		"terminate": func(L *lua.LState) int {
			ss := get(L)
			delete(s.vm.sessions, ss.id)
			delete(s.vm.sessionOf, ss.tbl)
			return 0
		},
		"maxinactiveinterval": func(L *lua.LState) int {
			ss := get(L)
			if L.GetTop() >= 2 {
				ss.timeout = time.Duration(L.CheckInt(2)) * time.Second
			}
			L.Push(lua.LNumber(ss.timeout / time.Second))
			return 1
		},
	})
}

// cookieType is the userdata type of cookie objects.
const cookieType = "lsp.cookie"

type cookie struct {
	q *Request
	c http.Cookie
}

// reqCookie implements request:cookie(name): the request's cookie as a
// cookie object, or nil.
func reqCookie(L *lua.LState) int {
	q := checkRequest(L, false)
	c, err := q.r.Cookie(L.CheckString(2))
	if err != nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(q.s.newCookie(L, q, *c))
	return 1
}

// respCreatecookie implements response:createcookie(name): a new cookie
// object; cookie:activate() adds it to the response.
func respCreatecookie(L *lua.LState) int {
	q := checkRequest(L, false)
	L.Push(q.s.newCookie(L, q, http.Cookie{Name: L.CheckString(2), Path: "/"}))
	return 1
}

func (s *Server) newCookie(L *lua.LState, q *Request, c http.Cookie) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = &cookie{q: q, c: c}
	ud.Metatable = s.vm.cookieMeta
	return ud
}

func checkCookie(L *lua.LState) *cookie {
	ud := L.CheckUserData(1)
	c, ok := ud.Value.(*cookie)
	if !ok {
		L.ArgError(1, "cookie expected")
	}
	return c
}

var cookieMethods = map[string]lua.LGFunction{
	"name":  func(L *lua.LState) int { L.Push(lua.LString(checkCookie(L).c.Name)); return 1 },
	"value": func(L *lua.LState) int { L.Push(lua.LString(checkCookie(L).c.Value)); return 1 },
	"setvalue": func(L *lua.LState) int {
		checkCookie(L).c.Value = L.CheckString(2)
		return 0
	},
	"setmaxage": func(L *lua.LState) int {
		c := checkCookie(L)
		c.c.MaxAge = L.CheckInt(2)
		if c.c.MaxAge == 0 {
			c.c.MaxAge = -1
		}
		return 0
	},
	"setpath":     func(L *lua.LState) int { checkCookie(L).c.Path = L.CheckString(2); return 0 },
	"setdomain":   func(L *lua.LState) int { checkCookie(L).c.Domain = L.CheckString(2); return 0 },
	"sethttponly": func(L *lua.LState) int { checkCookie(L).c.HttpOnly = L.OptBool(2, true); return 0 },
	"setsecure":   func(L *lua.LState) int { checkCookie(L).c.Secure = L.OptBool(2, true); return 0 },
	"activate": func(L *lua.LState) int {
		c := checkCookie(L)
		if !c.q.active {
			L.RaiseError("request is no longer valid")
		}
		c.q.header.Add("Set-Cookie", c.c.String())
		return 0
	},
	"delete": func(L *lua.LState) int {
		c := checkCookie(L)
		if !c.q.active {
			L.RaiseError("request is no longer valid")
		}
		d := c.c
		d.Value, d.MaxAge = "", -1
		c.q.header.Add("Set-Cookie", d.String())
		return 0
	},
}

// httpTime formats Unix seconds as an HTTP date.
func httpTime(sec int64) string { return time.Unix(sec, 0).UTC().Format(http.TimeFormat) }
