// Package exepages hands back to the kernel the pages of the operator's
// own executable that start-up mapped and the steady state does not run.
//
// Package initialisation and the building of clients, schemes and caches
// run once, from code spread over the whole binary. The kernel maps 64 KiB
// or more of the executable around each page first run ("fault-around"),
// so by the end of start-up some 42 MiB of keyferry's 36 MiB of code and
// 38 MiB of read-only data are resident, most of it never used again. Release drops this process's mappings of those read-only,
// unmodified pages (madvise MADV_DONTNEED). The pages stay in the page
// cache: code that runs again maps its page back on first use, without a
// disk read. Mappings that are writable or hold private copies of pages
// (a relocated or debugger-patched segment) are left alone, since dropping
// those would lose what was written to them.
package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Mapping is one mapping of the executable that Release may drop.
type Mapping struct {
	// Start and End are its addresses, End exclusive.
	Start, End uintptr
	// Resident is how much of it is mapped in, in bytes (smaps' Rss).
	Resident int64
}

// Released says what Release did.
type Released struct {
	// Mappings is how many mappings it dropped.
	Mappings int
	// Resident is how many bytes of them were mapped in before.
	Resident int64
}

// mapping is one entry of /proc/self/smaps, as far as Release reads it.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	rss        int64 // bytes
	anonymous  int64 // bytes
}

// ReadOnlyMappings parses smaps (the text of /proc/self/smaps) and returns
// the mappings of the file exe that Release may drop: readable, not
// writable, private, and holding no anonymous (privately modified) page.
func ReadOnlyMappings(smaps []byte, exe string) ([]Mapping, error) {
	entries, err := parseSmaps(smaps)
	if err != nil {
		return nil, err
	}
	var out []Mapping
	for _, m := range entries {
		if m.path != exe || !droppable(m) {
			continue
		}
		out = append(out, Mapping{Start: uintptr(m.start), End: uintptr(m.end), Resident: m.rss})
	}
	return out, nil
}

// droppable reports whether dropping m loses nothing: it is readable, not
// writable, private and holds no page of its own.
func droppable(m mapping) bool {
	return len(m.perms) == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p' && m.anonymous == 0
}

// parseSmaps reads the entries of an smaps file: a header line per mapping
// ("start-end perms offset dev inode [path]") followed by "Key: value"
// lines.
func parseSmaps(smaps []byte) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		key, value, isField := field(text)
		if isField {
			if len(out) == 0 {
				return nil, fmt.Errorf("smaps line %d: field %q before any mapping", line, key)
			}
			switch key {
			case "Rss", "Anonymous":
				n, err := kilobytes(value)
				if err != nil {
					return nil, fmt.Errorf("smaps line %d: %s: %w", line, key, err)
				}
				if key == "Rss" {
					out[len(out)-1].rss = n
				} else {
					out[len(out)-1].anonymous = n
				}
			}
			continue
		}
		m, err := header(text)
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading smaps: %w", err)
	}
	return out, nil
}

// field splits a "Key:   value" line; a mapping's header line is not one,
// as its first word holds a dash ("start-end").
func field(line string) (key, value string, ok bool) {
	key, value, ok = strings.Cut(line, ":")
	if !ok || strings.ContainsAny(key, " -") || key == "" {
		return "", "", false
	}
	return key, strings.TrimSpace(value), true
}

// header parses a mapping's header line.
func header(line string) (mapping, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return mapping{}, fmt.Errorf("mapping header %q has %d fields, want at least 5", line, len(f))
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("mapping range %q has no dash", f[0])
	}
	start, err := strconv.ParseUint(lo, 16, 64)
	if err != nil {
		return mapping{}, fmt.Errorf("mapping start: %w", err)
	}
	end, err := strconv.ParseUint(hi, 16, 64)
	if err != nil {
		return mapping{}, fmt.Errorf("mapping end: %w", err)
	}
	if end < start {
		return mapping{}, fmt.Errorf("mapping %q ends before it starts", f[0])
	}
	m := mapping{start: start, end: end, perms: f[1]}
	if len(f) > 5 {
		// The path is the rest of the line, spaces included.
		m.path = strings.Join(f[5:], " ")
	}
	return m, nil
}

// kilobytes parses an smaps size ("123 kB") into bytes.
func kilobytes(value string) (int64, error) {
	n, unit, _ := strings.Cut(value, " ")
	if unit != "kB" {
		return 0, fmt.Errorf("size %q is not in kB", value)
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 || v > 1<<43 {
		return 0, fmt.Errorf("size %q is not a number of kB", value)
	}
	return v << 10, nil
}
