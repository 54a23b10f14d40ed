package scheduler_test

import (
	"context"
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/tarponrt/tarpon/scheduler"
)

// A Go binding that parks the calling task until another goroutine
// delivers a value: the shape of a cosocket read.
func Example() {
	l, err := scheduler.New(scheduler.Config{})
	if err != nil {
		panic(err)
	}
	l.Start()
	defer l.Stop(context.Background())

	waiting := make(chan *scheduler.Task, 1)
	done := make(chan string, 1)
	l.Do(func(L *lua.LState) {
		// recv() parks the task; its results are what Resume passes.
		L.SetGlobal("recv", L.NewFunction(func(L *lua.LState) int {
			t := scheduler.Current(L)
			if t == nil {
				L.RaiseError("recv: not in a task")
			}
			waiting <- t
			return t.Park(L)
		}))
		fn, err := l.LoadString(`
			local ok, msg = pcall(function() return recv() end)
			result = msg .. "!"`, "example")
		if err != nil {
			panic(err)
		}
		l.SpawnWith(func(t *scheduler.Task) {
			t.OnExit(func(err error) { done <- fmt.Sprint("exit err=", err) })
		}, fn)
	})

	t := <-waiting // some I/O goroutine now has data for the task
	l.Post(func(L *lua.LState) { l.Resume(t, lua.LString("hello")) })
	fmt.Println(<-done)
	l.Do(func(L *lua.LState) { fmt.Println(L.GetGlobal("result")) })
	// Output:
	// exit err=<nil>
	// hello!
}
