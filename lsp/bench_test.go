package lsp

import (
	"io"
	"net/http"
	"os"
	"testing"
)

func benchEnv(b *testing.B) (*env, *http.Client) {
	e := newEnv(b, Options{})
	e.mount("/", map[string]string{
		"hello.lsp": `<html><?lsp for i = 1, 10 do ?><li><?lsp= i ?></li><?lsp end ?></html>`,
		"file.txt":  "static file body",
	})
	return e, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

func benchGet(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkPage is one .lsp request end to end: HTTP, task spawn on the
// VM, buffered response.
func BenchmarkPage(b *testing.B) {
	e, c := benchEnv(b)
	benchGet(b, c, e.http.URL+"/hello.lsp")
}

// BenchmarkStatic is one static file request (no VM involved).
func BenchmarkStatic(b *testing.B) {
	e, c := benchEnv(b)
	benchGet(b, c, e.http.URL+"/file.txt")
}

// BenchmarkCompilePage compiles a mid-sized page.
func BenchmarkCompilePage(b *testing.B) {
	src, err := os.ReadFile("testdata/golden/loop.lsp")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompilePage("loop.lsp", src); err != nil {
			b.Fatal(err)
		}
	}
}
