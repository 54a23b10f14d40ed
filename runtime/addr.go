package runtime

import (
	"bytes"
	"net"
	"sync"
)

// Memory per idle connection is a headline figure, and a connection's two
// addresses are a fair part of it. net.TCPConn makes each of them as a
// *net.TCPAddr whose IP slices into the syscall.Sockaddr it was decoded
// from, so every address pins a 32-byte sockaddr next to its own 48 bytes.
// gnet keeps both *net.TCPAddr of an enrolled connection (its LocalAddr and
// RemoteAddr) for as long as the connection lives. Every connection of a
// listener has the same local IP, and many clients share a few remote IPs
// (one host, a NAT, a proxy): shareAddrs points the IP of both addresses at
// one shared copy per IP before gnet takes them, which frees the two
// sockaddrs (64 bytes per connection) and keeps what the addresses say
// unchanged.

// ipTableSize is the number of IPs the table remembers (direct-mapped): a
// miss costs one small copy of the IP and nothing else.
const ipTableSize = 64

// ipTable hands out shared copies of IPs. Safe for concurrent use.
type ipTable struct {
	mu  sync.Mutex
	ips [ipTableSize]net.IP
}

// share returns a copy of ip that other callers with the same IP share.
// The caller must treat the result as read-only, as the net package's
// addresses are.
func (t *ipTable) share(ip net.IP) net.IP {
	if len(ip) == 0 {
		return ip
	}
	h := uint32(2166136261) // FNV-1a
	for _, b := range ip {
		h = (h ^ uint32(b)) * 16777619
	}
	slot := &t.ips[h%ipTableSize]
	t.mu.Lock()
	defer t.mu.Unlock()
	if bytes.Equal(*slot, ip) { // exact bytes: a 4-byte and a 16-byte IPv4 stay distinct
		return *slot
	}
	cp := make(net.IP, len(ip)) // exactly sized, without the sockaddr around it
	copy(cp, ip)
	*slot = cp
	return cp
}

// shareAddrs replaces the IPs of nc's TCP addresses by shared copies (see
// above). Called on the hand-off goroutine before gnet takes the addresses;
// nothing else reads them then (net/http is done with a hijacked
// connection), and their values do not change.
func (r *Reactor) shareAddrs(nc net.Conn) {
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok && a != nil {
		a.IP = r.ips.share(a.IP)
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok && a != nil {
		a.IP = r.ips.share(a.IP)
	}
}
