package broker

import "sync/atomic"

// idTable maps non-zero IDs to *T. Reads are lock-free (the publish path
// resolves every TID and ETID here); writes are serialised by the caller
// (the hub's lock). It replaces a sync.Map, whose two nodes per entry cost
// an idle client about 110 bytes where an entry here costs 21 to 64.
//
// Open addressing with linear probing over slots of atomic words. A reader
// that finds a slot's key equal to its ID takes the slot's value, nil
// meaning absent; an empty key (0) ends the probe. The writer therefore
// publishes a slot's key before its value, and reuses a slot only once its
// value is nil (a deleted entry keeps its key as a tombstone, so the probe
// chains that pass over it stay intact). Growing builds a fresh table and
// swaps it in: a reader still on the old one sees the table as it was just
// before the swap, which is what it would have seen had it read earlier.
type idTable[T any] struct {
	tab  atomic.Pointer[idSlots[T]]
	live int // entries with a value; writer only
	used int // slots with a key (live + tombstones); writer only
}

type idSlots[T any] struct {
	mask  uint32
	slots []idSlot[T]
}

type idSlot[T any] struct {
	key atomic.Uint32
	val atomic.Pointer[T]
}

const minIDSlots = 16

// idHash spreads sequential IDs (a hub without rndtid) over the table.
func idHash(id uint32) uint32 { return id * 0x9E3779B1 }

// load returns the value stored under id, or nil. Any goroutine.
func (m *idTable[T]) load(id uint32) *T {
	t := m.tab.Load()
	if t == nil || id == 0 {
		return nil
	}
	for i := idHash(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case id:
			v := s.val.Load()
			if s.key.Load() != id {
				// The writer reused this tombstone for another ID between
				// our two loads: v may be that ID's. id is not here.
				return m.load(id)
			}
			return v
		case 0:
			return nil
		}
	}
}

// store sets id's value (v non-nil, id non-zero). Writer only.
func (m *idTable[T]) store(id uint32, v *T) {
	t := m.tab.Load()
	if t == nil || 4*(m.used+1) > 3*len(t.slots) {
		t = m.grow()
	}
	free := -1 // the first tombstone of another ID on the probe
	for i := idHash(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch k := s.key.Load(); {
		case k == id:
			if s.val.Load() == nil {
				m.live++
			}
			s.val.Store(v)
			return
		case k == 0:
			if free < 0 {
				m.used++
				free = int(i)
			}
			s = &t.slots[free]
			s.key.Store(id) // key first: a reader of the old ID moves on, one of id finds nil
			s.val.Store(v)
			m.live++
			return
		case free < 0 && s.val.Load() == nil:
			free = int(i)
		}
	}
}

// delete removes id. Writer only.
func (m *idTable[T]) delete(id uint32) {
	t := m.tab.Load()
	if t == nil || id == 0 {
		return
	}
	for i := idHash(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key.Load() {
		case id:
			if s.val.Swap(nil) != nil {
				m.live--
			}
			return
		case 0:
			return
		}
	}
}

// grow makes a table for twice the live entries (dropping tombstones) and
// publishes it: it stays between a quarter and three quarters full, 21 to
// 64 bytes per entry. Writer only.
func (m *idTable[T]) grow() *idSlots[T] {
	n := minIDSlots
	for n < 2*(m.live+1) {
		n *= 2
	}
	t := &idSlots[T]{mask: uint32(n - 1), slots: make([]idSlot[T], n)}
	if old := m.tab.Load(); old != nil {
		for i := range old.slots {
			s := &old.slots[i]
			v := s.val.Load()
			if v == nil {
				continue
			}
			id := s.key.Load()
			j := idHash(id) & t.mask
			for t.slots[j].key.Load() != 0 {
				j = (j + 1) & t.mask
			}
			t.slots[j].key.Store(id)
			t.slots[j].val.Store(v)
		}
	}
	m.used = m.live
	m.tab.Store(t)
	return t
}
