package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// controllerHeap saves the controller's heap profile, taken right after a
// garbage collection, from its pprof endpoint (addr: host:port of its
// --pprof-bind-address) to file, and returns its live heap (the runtime's
// HeapAlloc after that collection) in MiB. The collection it forces comes
// after the peak RSS was read, so it cannot lower the figure reported.
func controllerHeap(ctx context.Context, addr, file string) (float64, error) {
	get := func(query string) (io.ReadCloser, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?"+query, nil)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("reading the controller's heap profile: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("reading the controller's heap profile: %s", resp.Status)
		}
		return struct {
			io.Reader
			io.Closer
		}{resp.Body, closerFunc(func() error { defer cancel(); return resp.Body.Close() })}, nil
	}
	body, err := get("gc=1")
	if err != nil {
		return 0, err
	}
	f, err := os.Create(file)
	if err != nil {
		body.Close()
		return 0, err
	}
	_, err = io.Copy(f, body)
	body.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("saving the controller's heap profile: %w", err)
	}
	// The text form ends with the runtime's MemStats, as of the collection
	// just forced.
	text, err := get("debug=1")
	if err != nil {
		return 0, err
	}
	defer text.Close()
	sc := bufio.NewScanner(text)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			b, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("reading HeapAlloc %q: %w", v, err)
			}
			return b / (1 << 20), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the controller's heap profile: %w", err)
	}
	return 0, fmt.Errorf("the controller's heap profile has no HeapAlloc")
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }
