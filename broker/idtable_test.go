package broker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestIDTableMatchesMap: random stores and deletes over a small key space
// (so tombstones are reused and the table grows and shrinks) agree with a
// map after every step.
func TestIDTableMatchesMap(t *testing.T) {
	cases := []struct {
		name string
		keys uint32 // IDs drawn from 1..keys
		ops  int
	}{
		{"few keys, many reuses", 8, 20000},
		{"sequential-style small IDs", 300, 50000},
		{"random 32-bit IDs", 0, 50000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			var m idTable[int]
			want := map[uint32]*int{}
			var seen []uint32
			key := func() uint32 {
				if tc.keys > 0 {
					return 1 + rng.Uint32N(tc.keys)
				}
				if len(seen) > 0 && rng.IntN(2) == 0 {
					return seen[rng.IntN(len(seen))]
				}
				k := rng.Uint32() | 1
				seen = append(seen, k)
				return k
			}
			for i := 0; i < tc.ops; i++ {
				k := key()
				switch rng.IntN(3) {
				case 0, 1:
					v := new(int)
					*v = i
					m.store(k, v)
					want[k] = v
				case 2:
					m.delete(k)
					delete(want, k)
				}
				if got := m.load(k); got != want[k] {
					t.Fatalf("op %d: load(%d) = %v, want %v", i, k, got, want[k])
				}
			}
			for k, v := range want {
				if got := m.load(k); got != v {
					t.Fatalf("load(%d) = %v, want %v", k, got, v)
				}
			}
			if m.live != len(want) {
				t.Fatalf("live %d, want %d", m.live, len(want))
			}
			if m.load(0) != nil {
				t.Fatal("ID 0 found")
			}
			if n := len(m.tab.Load().slots); n > minIDSlots && 4*m.live < n/4 {
				t.Fatalf("%d slots for %d live entries", n, m.live)
			}
		})
	}
}

// TestIDTableConcurrentReaders: readers never see a value under another
// ID, and always find the IDs that stay put, while the writer inserts,
// deletes and reuses tombstones and the table grows (run with -race).
func TestIDTableConcurrentReaders(t *testing.T) {
	var m idTable[uint32]
	var mu sync.Mutex // the hub's lock
	stable := make([]uint32, 64)
	for i := range stable {
		stable[i] = uint32(1000000 + i)
		v := stable[i]
		m.store(stable[i], &v)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for !stop.Load() {
				id := 1 + rng.Uint32N(4096)
				if v := m.load(id); v != nil && *v != id {
					errs <- "a value under another ID"
					return
				}
				s := stable[rng.IntN(len(stable))]
				if v := m.load(s); v == nil || *v != s {
					errs <- "a stable ID went missing"
					return
				}
			}
		}(uint64(r))
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 200000; i++ {
		id := 1 + rng.Uint32N(4096)
		mu.Lock()
		if rng.IntN(2) == 0 {
			v := id
			m.store(id, &v)
		} else {
			m.delete(id)
		}
		mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
}
