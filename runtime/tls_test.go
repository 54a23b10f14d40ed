package runtime

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tarpon test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestTLSEchoOnTheReactor(t *testing.T) {
	r := newReactor(t, Config{})
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &echoHandler{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := r.Upgrade(w, req, h, nil); err != nil {
			t.Logf("upgrade: %v", err)
		}
	})}
	go srv.Serve(NewTLSListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	const conns = 20
	var clients []*websocket.Conn
	for range conns {
		c, _, err := d.Dial("wss://"+ln.Addr().String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// No goroutine per TLS connection after the hand-off.
	waitFor(t, 5*time.Second, "open connections", func() bool { return r.Stats().Open == conns })
	if g := goruntime.NumGoroutine(); g > 40 {
		t.Errorf("%d goroutines with %d wss connections open", g, conns)
	}
	for _, c := range clients {
		for _, msg := range [][]byte{[]byte("hello over tls"), bytes.Repeat([]byte("z"), 1<<20)} {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.ReadMessage()
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes: got %d, %v", len(msg), len(got), err)
			}
		}
	}
}
