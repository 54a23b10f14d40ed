// Package lsp serves BAS/Mako-style Lua Server Pages apps: the .lsp
// compiler, apps (.preload, .lua/ modules, static files), virtual
// directories (ba.create.dir) and the request/response object
// (cosocket-api.md §4).
//
// It is not an HTTP server of its own: a Server is an http.Handler to put
// behind net/http (or runtime's front end). It does not upgrade connections
// either: the cosocket package does that through RequestFrom and
// Request.MarkHijacked.
//
// # Use
//
//	loop, _ := scheduler.New(scheduler.Config{})
//	loop.Start()
//	srv := lsp.NewServer(loop, lsp.Options{})
//	srv.Preload("smq.hub", smqlua.Loader)      // require"smq.hub" in every app
//	app, err := srv.Mount("/", os.DirFS("www"), "www") // runs www/.preload
//	http.ListenAndServe(addr, srv)
//	...
//	app.Reload()                                // or srv.Reload()
//	srv.Close(ctx); loop.Stop(ctx)
//
// # Pages
//
// <?lsp code ?> and <?lsp= expr ?> (and <?= expr ?>, an extension) compile
// to one Lua chunk per page that begins local _ENV,pathname,io,page,app=...
// Line N of the page is line N of the chunk, so errors carry the page's own
// line numbers; static text is emitted byte for byte, whatever it contains.
// Pages are compiled without an LState and cached by path, mtime and size.
//
// Lua 5.1 has no _ENV: each request gets a fresh environment table (request,
// response, print, _emit; __index → the app table → _G), installed as the
// function environment of a per-request closure of the page's prototype. So
// globals a page assigns live for that request only (and are shared with the
// pages it includes or forwards to); page is a table per page path that
// persists for the app's lifetime; app is the app environment, where
// .preload ran. The same goes for directory functions: f(_ENV, relpath) is
// called through a per-request closure of f whose environment is the
// request table.
//
// # Requests
//
// net/http calls ServeHTTP on its goroutine. Directories are tried longest
// prefix first, then by priority; a directory function may decline
// (return false); an app serves its files (names starting with "." are 404;
// .lsp runs; anything else goes through http.ServeContent with an ETag).
// A Lua handler runs as a scheduler task: the HTTP goroutine posts the spawn
// and waits for the task to report its end. The response is buffered in the
// Request and written by the HTTP goroutine afterwards; response:flush()
// parks the task while the HTTP goroutine writes what is buffered, then
// resumes it. A handler that sleeps (ba.sleep) or waits on a socket parks;
// the VM keeps serving others. A Lua error gives 500; the message is logged,
// and shown in the page only with Options.Dev. A task that outruns the
// scheduler's budget is killed and also gives 500.
//
// Upgrades: ba.socket.req2sock gets the connection through RequestFrom and
// Request.HTTP, hijacks it, then calls Request.Hijacked (MarkHijacked):
// the HTTP goroutine writes nothing and returns at once, while the task
// goes on with the socket. *Request satisfies cosocket.Exchange as is.
//
// # Apps
//
// .preload runs once, as a task, in the app environment, which holds app
// (itself), io (read-only access to the app's files), dir (the app's own
// directory, whose setfunc runs in front of its files), require (the app's
// .lua/ modules, then modules registered with Server.Preload, then the
// sandbox's require) and ba (the global ba, with ba.timer, ba.thread.run,
// ba.thread.create and ba.sleep wrapped to record what the app starts, and
// ba.create.dir bound to the app). onunload() defined there runs at unload.
// Unload (Unmount, Reload, Close) then cancels the app's timers, kills its
// ba.thread jobs, unlinks the directories it created and drops its page
// tables; a request task still sleeping in the app gets "app unloaded" from
// ba.sleep. Reload loads a fresh generation, so nothing is duplicated.
//
// Globals added for all code: ba.create.dir and trace(...) (to the log);
// ba.json comes with the scheduler. Options.Setup runs once on the
// VM for more globals; Options.AppSetup runs for every app environment.
//
// # Goroutines
//
// Server's exported methods may be called from any goroutine except that
// Mount, Unmount, Reload, App.Reload and Close wait on the scheduler (loop.Do)
// and so must not be called on it, and need a started loop. Everything with
// an *lua.LState runs on the scheduler goroutine: the vmState, app
// generations, sessions, page tables. HTTP goroutines own a request until
// its task starts and again after it reports; the channel hand-offs order
// the two, so the Request's response fields need no lock. Request.mu guards
// only the hijack/detach state that both sides race for.
//
// # Locks
//
// App.reloadMu (one load/unload at a time) → Server.mu (apps, inserted
// directories, route rebuilds, Dir.fn/parent, preloads) and App.mu (page
// and ETag caches) → Request.mu. None is held across a loop.Do except
// App.reloadMu.
//
// # Files
//
//	compile.go   Translate/CompilePage: .lsp → Lua chunk → *lua.FunctionProto
//	server.go    Server, Options, routing (ServeHTTP), runHandler, Mount/Unmount/Reload/Close
//	request.go   Request (RequestFrom, HTTP, MarkHijacked), request environment, request methods
//	response.go  buffered response: writeOut, flush hand-off, senderror/redirect helpers
//	app.go       App: generations, .preload, unload, require, page cache, static files
//	dir.go       Dir: ba.create.dir and the dir methods, prefix computation
//	lua.go       Lua side of the server: runners, include/forward, app ba wrappers, trace
//	session.go   in-memory sessions, cookie objects
//	lib_io.go    the app's read-only io object
//	stack.go     Stack: the whole app server (reactor, scheduler, ba.socket, smq.hub, pages) as the tarpon command builds it
//
// # Not done
//
// BAS methods absent: request:user/login/logout (user returns nil),
// certificate/cipher/clientcert, multipart streaming (multipart forms are
// parsed into data()), setauth/p403/redirect2tls, resrdr/lspfilter/
// insertprolog, setbasic/setdigest, downgrade, deferred. encodeurl returns
// its argument. Lua 5.4 syntax in pages is not accepted (gopher-lua is 5.1).
package lsp
