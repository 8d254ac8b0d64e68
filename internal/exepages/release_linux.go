package exepages

import (
	"fmt"
	"os"
	"syscall"
)

// Release drops this process's mappings of the read-only pages of its own
// executable (ReadOnlyMappings of /proc/self/smaps). Code and data still
// in use are mapped back as they are touched.
func Release() (Released, error) {
	exe, err := os.Executable()
	if err != nil {
		return Released{}, fmt.Errorf("finding the executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return Released{}, fmt.Errorf("reading the process's mappings: %w", err)
	}
	maps, err := ReadOnlyMappings(smaps, exe)
	if err != nil {
		return Released{}, err
	}
	var done Released
	for _, m := range maps {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.Start, m.End-m.Start, syscall.MADV_DONTNEED); errno != 0 {
			return done, fmt.Errorf("dropping the mapping %#x-%#x: %w", m.Start, m.End, errno)
		}
		done.Mappings++
		done.Resident += m.Resident
	}
	return done, nil
}
