package testnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The host changes a node makes, all named so that a later run can find and
// undo the leftovers of one that was killed.
const (
	// BaseDir holds every file of the running node (short, because
	// containerd's and the kubelet's Unix sockets live under it).
	BaseDir = "/tmp/keyferry-node"
	// lockFile serialises nodes on one machine.
	lockFile = "/tmp/keyferry-node.lock"
	// Bridge is the pod network's bridge; HostIP is its address, the one
	// address of the host that pods reach.
	Bridge = "kfnode0"
	HostIP = "10.87.0.1"
	// PodCIDR is the pod network, ServiceCIDR the Service network; the
	// API server's Service address is the first of ServiceCIDR.
	PodCIDR     = "10.87.0.0/24"
	ServiceCIDR = "10.87.1.0/24"
	ServiceIP   = "10.87.1.1"
	// cniNetwork names the CNI network (and its cache files).
	cniNetwork = "keyferry-node"
	// natChain DNATs the API server's Service address; fwdChain keeps pod
	// traffic on the bridge (nothing pods send leaves the machine).
	natChain = "KEYFERRY-NODE-DNAT"
	fwdChain = "KEYFERRY-NODE-FWD"
)

// sysctls are the kernel settings the kubelet and the bridge plugin change.
var sysctls = []string{"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "net/ipv4/ip_forward"}

// hostState is what the host looked like before the node started; it is
// written to BaseDir/host.json first, so a leftover sweep can restore it.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// Chains lists the iptables/ip6tables chains per "<command> <table>"
	// that existed before: any other chain was made by the node.
	Chains map[string][]string `json:"chains"`
	// Absent lists host directories that did not exist before (containerd's
	// shim socket dir, the CNI cache): the node made them, teardown removes
	// them.
	Absent []string `json:"absent"`
}

// hostDirs are directories outside BaseDir that containerd and the CNI
// plugins write to whatever their configuration says.
var hostDirs = []string{"/run/containerd", "/var/lib/cni"}

var iptablesTables = map[string][]string{
	"iptables":  {"filter", "nat", "mangle"},
	"ip6tables": {"filter", "nat", "mangle"},
}

func recordHost() (*hostState, error) {
	s := &hostState{Sysctls: map[string]string{}, Chains: map[string][]string{}}
	for _, k := range sysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return nil, fmt.Errorf("reading sysctl %s: %w", k, err)
		}
		s.Sysctls[k] = strings.TrimSpace(string(b))
	}
	for _, d := range hostDirs {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			s.Absent = append(s.Absent, d)
		}
	}
	for cmd, tables := range iptablesTables {
		for _, table := range tables {
			chains, _, err := iptablesChains(cmd, table)
			if err != nil {
				if cmd == "ip6tables" {
					continue // no IPv6 netfilter on this host: nothing to restore
				}
				return nil, err
			}
			s.Chains[cmd+" "+table] = chains
		}
	}
	return s, nil
}

func (s *hostState) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func loadHost(path string) (*hostState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s hostState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// iptablesChains lists the chains of table and the rules (-A lines).
func iptablesChains(cmd, table string) (chains []string, rules []string, err error) {
	out, err := exec.Command(cmd, "-w", "-t", table, "-S").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("%s -t %s -S: %w", cmd, table, err)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "-N" || f[0] == "-P"):
			chains = append(chains, f[1])
		case len(f) >= 2 && f[0] == "-A":
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	return chains, rules, nil
}

// teardown undoes everything a node started or changed, from the files in
// base alone, so it serves both the end of a test and the sweep of a run
// that was killed. It keeps going past errors and returns them all.
func teardown(base string, logf func(string, ...any)) error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
			logf("testnode teardown: %v", err)
		}
	}
	sock := filepath.Join(base, "containerd", "containerd.sock")
	// The kubelet first, so that it restarts nothing; then the pods and
	// their shims; then containerd and the control plane.
	note(stopRecorded(base, []string{"kubelet"}))
	note(killPods())
	note(killShims(sock))
	note(stopRecorded(base, []string{"containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}))
	note(unmountUnder(base))
	note(removePodCgroups())
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
			note(fmt.Errorf("deleting bridge %s: %v: %s", Bridge, err, out))
		}
	}
	if s, err := loadHost(filepath.Join(base, "host.json")); err == nil {
		note(restoreIptables(s))
		note(restoreSysctls(s))
		for _, d := range s.Absent {
			note(os.RemoveAll(d))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		note(err)
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); len(m) > 0 {
		for _, f := range m {
			note(os.Remove(f))
		}
	}
	note(os.RemoveAll(base))
	return errors.Join(errs...)
}

// recordPID writes base/pids/name so a teardown can find the process again;
// exe guards against a recycled PID. exe is recorded with its symbolic links
// resolved, as /proc/PID/exe shows it: a bin/ that is a link (a git worktree
// sharing another checkout's binaries) otherwise made the teardown take its
// own kubelet for another program and leave it running, fighting the next
// node's kubelet.
func recordPID(base, name string, pid int, exe string) error {
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	dir := filepath.Join(base, "pids")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(pid)+" "+exe+"\n"), 0o600)
}

// stopRecorded sends SIGTERM to the recorded processes, waits up to 15s
// for each and then kills it.
func stopRecorded(base string, names []string) error {
	var errs []error
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(base, "pids", name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || strings.TrimSuffix(exe, " (deleted)") != f[1] {
			continue // gone, or the PID now belongs to another program
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 15*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !waitGone(pid, 5*time.Second) {
				errs = append(errs, fmt.Errorf("%s (pid %d) survived SIGKILL", name, pid))
			}
		}
	}
	return errors.Join(errs...)
}

// waitGone polls until pid has exited (or is a zombie, which its parent
// reaps).
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// podCgroupDirs returns the kubelet's "kubepods" cgroup of each cgroup v1
// hierarchy (the kubelet's cgroupfs driver puts every pod there).
func podCgroupDirs() []string {
	var dirs []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		d := filepath.Join("/sys/fs/cgroup", e.Name(), "kubepods")
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// killPods kills every process in the pods' cgroups, until none is left.
func killPods() error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pids []int
		for _, root := range podCgroupDirs() {
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
						pids = append(pids, pid)
					}
				}
				return nil
			})
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod processes %v survive", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killShims kills the containerd shims serving our containerd (their
// command line names its socket, which is ours alone).
func killShims(sock string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == "containerd-shim-runc-v2" && slices.Contains(args, sock) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		if !waitGone(pid, 5*time.Second) {
			return fmt.Errorf("shim %d survived SIGKILL", pid)
		}
	}
	return nil
}

// unmountUnder detaches every mount below base, deepest first (overlay
// root filesystems, tmpfs volumes, network namespaces, /dev/shm).
func unmountUnder(base string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == base || strings.HasPrefix(p, base+"/") {
			points = append(points, p)
		}
	}
	// Deepest first; a path mounted twice is listed twice.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removePodCgroups removes the kubepods cgroup trees, leaves first.
func removePodCgroups() error {
	var errs []error
	for _, root := range podCgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			var err error
			for range 50 { // a cgroup stays busy for a moment after its last process exits
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// restoreIptables deletes the node's chains (KEYFERRY-NODE-*, the kubelet's
// KUBE-*) that did not exist before it started, after the rules that jump
// to them.
func restoreIptables(s *hostState) error {
	var errs []error
	for key, before := range s.Chains {
		cmd, table, _ := strings.Cut(key, " ")
		chains, rules, err := iptablesChains(cmd, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var added []string
		for _, c := range chains {
			// Only the node's chains: our own and the kubelet's canaries.
			ours := strings.HasPrefix(c, "KEYFERRY-NODE") || strings.HasPrefix(c, "KUBE-")
			if ours && !slices.Contains(before, c) {
				added = append(added, c)
			}
		}
		if len(added) == 0 {
			continue
		}
		for _, r := range rules {
			f := strings.Fields(r)
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g") && slices.Contains(added, f[i+1]) && !slices.Contains(added, f[1]) {
					args := append([]string{"-w", "-t", table, "-D"}, f[1:]...)
					if out, err := exec.Command(cmd, args...).CombinedOutput(); err != nil {
						errs = append(errs, fmt.Errorf("%s %v: %v: %s", cmd, args, err, out))
					}
					break
				}
			}
		}
		for _, c := range added {
			_ = exec.Command(cmd, "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range added {
			if out, err := exec.Command(cmd, "-w", "-t", table, "-X", c).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -X %s: %v: %s", cmd, table, c, err, out))
			}
		}
	}
	return errors.Join(errs...)
}

func restoreSysctls(s *hostState) error {
	var errs []error
	for k, v := range s.Sysctls {
		p := filepath.Join("/proc/sys", k)
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s=%s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}
