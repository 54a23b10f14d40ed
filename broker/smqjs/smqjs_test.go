package smqjs

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct {
		name     string
		method   string
		status   int
		wantBody bool
	}{
		{name: "get serves the script", method: http.MethodGet, status: 200, wantBody: true},
		{name: "head has headers only", method: http.MethodHead, status: 200},
		{name: "post refused", method: http.MethodPost, status: http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/rtl/smq.js", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/javascript; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.wantBody && !bytes.Equal(body, Source) {
				t.Fatalf("body is %d bytes, want the %d-byte script", len(body), len(Source))
			}
		})
	}
	if !bytes.Contains(Source, []byte("SMQ.Client")) && !bytes.Contains(Source, []byte("Client: Client")) {
		t.Fatal("embedded script does not define SMQ.Client")
	}
}
