// A FaaS-like Go function for cxlfork's real-runtime tests (the protocol
// of pyfunc.py), built static (CGO_ENABLED=0) with Debian's Go toolchain.
//
// At start it builds ~32 MiB of warm state, deterministically: a map of
// string -> struct, a slice of float64, a byte blob, and a sorted index.
// It runs the way a Go service does: GOMAXPROCS threads and the runtime's
// own (sysmon, GC workers), the netpoller (an epoll descriptor and its
// wake-up pipe, which timers use), 8 worker goroutines blocked on a
// channel, a 20 ms ticker goroutine, and os/signal delivering SIGUSR1 on a
// channel. Then it prints "ready <pid>" and waits for requests forever.
//
// A request is one SIGUSR1. Request n is computed by the worker goroutines
// (each hashes a slice of the state; one sums the floats exactly in order)
// and combined with the request number, whether the ticker ran since the
// previous request, a timer (time.After) firing, and the number of
// goroutines; the request is recorded in the state, and
// "result <n> <hexdigest>" is appended to $RT_DIR/<pid>.result and to
// stdout. The original and any clone give the same digest for the same
// request number.
//
//	gofunc [MIB]    warm state in MiB (default 32, or $GOFUNC_MIB)
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type item struct {
	id    int
	score uint64
	tag   string
}

type state struct {
	m      map[string]item
	keys   []string
	floats []float64
	blob   []byte
	served []int
}

const workers = 8

type job struct {
	part int
	out  chan<- [32]byte
}

var rng uint64 = 20251128

func next() uint64 {
	rng ^= rng >> 12
	rng ^= rng << 25
	rng ^= rng >> 27
	return rng * 2685821657736338717
}

func build(mib float64) *state {
	nKeys := int(mib * 1048576 * 0.45 / 120)
	nFloats := int(mib * 1048576 * 0.2 / 8)
	blob := int(mib * 1048576 * 0.3)
	s := &state{m: make(map[string]item, nKeys), floats: make([]float64, nFloats), blob: make([]byte, blob)}
	for i := 0; i < nKeys; i++ {
		k := "key-" + strconv.Itoa(i) + "-" + strconv.FormatUint(next()%1000000000, 10)
		s.m[k] = item{id: i, score: next() % 1000000, tag: "v" + strconv.Itoa(i%97)}
		s.keys = append(s.keys, k)
	}
	sort.Strings(s.keys)
	for i := range s.floats {
		s.floats[i] = float64(next()>>11)/(1<<53)*1000 - 500
	}
	for i := 0; i+8 <= len(s.blob); i += 8 {
		binary.LittleEndian.PutUint64(s.blob[i:], next())
	}
	return s
}

// part hashes one workers-th of the state.
func (s *state) part(p int) [32]byte {
	h := sha256.New()
	var b [8]byte
	for i := p; i < len(s.keys); i += workers {
		it := s.m[s.keys[i]]
		h.Write([]byte(s.keys[i]))
		binary.LittleEndian.PutUint64(b[:], uint64(it.id)+it.score)
		h.Write(b[:])
	}
	n := len(s.blob) / workers
	h.Write(s.blob[p*n : (p+1)*n])
	if p == 0 {
		sum := 0.0
		for _, f := range s.floats {
			sum += f
		}
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(sum))
		h.Write(b[:])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func main() {
	mib := 32.0
	if v := os.Getenv("GOFUNC_MIB"); v != "" {
		mib, _ = strconv.ParseFloat(v, 64)
	}
	if len(os.Args) > 1 {
		mib, _ = strconv.ParseFloat(os.Args[1], 64)
	}
	dir := os.Getenv("RT_DIR")
	if dir == "" {
		dir = "/tmp/rt"
	}
	s := build(mib)

	jobs := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.out <- s.part(j.part)
			}
		}()
	}
	var ticks atomic.Int64
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		for range t.C {
			ticks.Add(1)
		}
	}()
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGUSR1)
	runtime.GC()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	fmt.Printf("# go %s: %d keys, %d floats, %d blob bytes, GOMAXPROCS %d\n", runtime.Version(), len(s.keys), len(s.floats), len(s.blob), runtime.GOMAXPROCS(0))
	fmt.Printf("ready %d\n", os.Getpid())

	last := ticks.Load()
	for n := 1; ; n++ {
		<-sig
		ticked := ticks.Load() > last
		last = ticks.Load()
		// A timer must fire (the netpoller's timeouts) ...
		<-time.After(5 * time.Millisecond)
		// ... and the workers compute their parts.
		outs := make([]chan [32]byte, workers)
		for p := 0; p < workers; p++ {
			outs[p] = make(chan [32]byte, 1)
			jobs <- job{part: p, out: outs[p]}
		}
		h := sha256.New()
		fmt.Fprintf(h, "%d %v %d %v ", n, ticked, runtime.NumGoroutine(), s.served)
		for p := 0; p < workers; p++ {
			r := <-outs[p]
			h.Write(r[:])
		}
		s.served = append(s.served, n)
		d := fmt.Sprintf("%x%08x", h.Sum(nil), crc32.ChecksumIEEE([]byte(strconv.Itoa(n))))
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.result", os.Getpid())), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "result %d %s\n", n, d)
			f.Close()
		}
		fmt.Printf("result %d %s\n", n, d)
	}
}
