package exepages

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
)

// executableMappings returns the mappings of the test binary Release may
// drop, as they are now.
func executableMappings(t *testing.T) []Mapping {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := ReadOnlyMappings(smaps, exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 {
		t.Fatalf("no read-only mapping of %s in /proc/self/smaps", exe)
	}
	return maps
}

// mapInAll maps in every page of the executable's droppable mappings, as
// if start-up had run code from all over the binary, by reading them
// through /proc/self/mem, which faults each page into this process.
func mapInAll(t *testing.T) {
	t.Helper()
	maps := executableMappings(t)
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	buf := make([]byte, 1<<20)
	for _, m := range maps {
		for off := int64(m.Start); off < int64(m.End); off += int64(len(buf)) {
			n := min(int64(len(buf)), int64(m.End)-off)
			if _, err := mem.ReadAt(buf[:n], off); err != nil {
				t.Fatalf("reading %#x of the executable's mapping: %v", off, err)
			}
		}
	}
}

// resident sums how much of the executable's droppable mappings is mapped
// in now.
func resident(t *testing.T) int64 {
	t.Helper()
	maps := executableMappings(t)
	var n int64
	for _, m := range maps {
		n += m.Resident
	}
	return n
}

func TestReleaseDropsTheExecutablesPagesAndTheCodeStillRuns(t *testing.T) {
	mapInAll(t)
	before := resident(t)
	got, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if got.Mappings == 0 || got.Resident < before {
		t.Errorf("Release dropped %+v, want the executable's mappings, with about the %d bytes resident before", got, before)
	}
	// Code and read-only data come back from the page cache as they run:
	// a hash of a known input needs both.
	sum := sha256.Sum256([]byte("keyferry"))
	if h := hex.EncodeToString(sum[:]); h != "d521cac9c2765b71756b0d8304afae409a28f8930d9ce433d9aa087d8e9b63a4" {
		t.Fatalf("sha256 after Release = %s", h)
	}
	after := resident(t)
	// Without Release every page would still be mapped in; with it, only
	// those run or read since.
	if after >= before {
		t.Errorf("%d bytes of the executable resident after Release, %d before: want fewer", after, before)
	}
	t.Logf("resident read-only pages of the test binary: %d KiB before, %d KiB after", before>>10, after>>10)
}
