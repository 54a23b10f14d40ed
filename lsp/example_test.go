package lsp_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing/fstest"

	"github.com/tarponrt/tarpon/lsp"
	"github.com/tarponrt/tarpon/scheduler"
)

func ExampleServer() {
	loop, err := scheduler.New(scheduler.Config{})
	if err != nil {
		panic(err)
	}
	loop.Start()
	srv := lsp.NewServer(loop, lsp.Options{})
	app := fstest.MapFS{
		".preload":  {Data: []byte(`app.title = "Tarpon"`)},
		"index.lsp": {Data: []byte(`<h1><?lsp= app.title ?></h1><?lsp for i = 1, 3 do ?><?lsp= i ?><?lsp end ?>`)},
	}
	if _, err := srv.Mount("/", app, "demo"); err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	resp, err := hs.Client().Get(hs.URL + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	_ = srv.Close(context.Background())
	_ = loop.Stop(context.Background())
	// Output: 200 <h1>Tarpon</h1>123
}
