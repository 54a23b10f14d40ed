package broker

import (
	"testing"
)

// FuzzPeerInput feeds an arbitrary raw stream, cut into messages by
// SplitLen16, to a connected peer (and the same bytes to a peer still in
// its handshake). Whatever happens to those peers, the hub must not panic
// and must keep serving another client.
func FuzzPeerInput(f *testing.F) {
	for _, g := range goldenPackets(f) {
		f.Add(AppendLen16(nil, g.wire(f)))
	}
	f.Add(AppendLen16(AppendLen16(nil, AppendSubscribe(nil, "a")), AppendPubFrag(nil, 0, 0, 0, []byte("x"))))
	f.Fuzz(func(t *testing.T, stream []byte) {
		h := newFakeHub(t, &Options{MaxTopicsPerPeer: 64})
		watcher := connectFake(t, h, false, "watcher\x00\xfe\xfd-not-guessable")
		wtid := watcher.subscribe("alive")
		victim := connectFake(t, h, true, "victim")
		fresh := openFake(t, h, false)
		for len(stream) > 0 {
			adv, msg, err := SplitLen16(stream, true)
			if err != nil || adv == 0 {
				break
			}
			stream = stream[adv:]
			victim.send(msg)
			fresh.send(msg)
		}
		watcher.c.take()
		watcher.publish(wtid, 0, "ok")
		watcher.expectPublish(wtid, watcher.etid, 0, "ok")
		h.Shutdown("", 0)
		if s := h.Stats(); s.Peers != 0 || s.Handshaking != 0 {
			t.Fatalf("peers left after Shutdown: %+v", s)
		}
	})
}
