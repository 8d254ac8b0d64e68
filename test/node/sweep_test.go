package node

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/keyferry/keyferry/internal/testing/testnode"
)

// envChild makes the test binary the node of TestKilledRunIsSweptByTheNext.
const envChild = "KEYFERRY_NODE_SWEEP_CHILD"

// A run killed with SIGKILL (a test timeout, an OOM kill) cannot clean up:
// its pod keeps running under containerd's shim, outside the test's process
// tree, and the host keeps its bridge, iptables chains and changed sysctls.
// The next run sweeps all of it before it starts.
func TestKilledRunIsSweptByTheNext(t *testing.T) {
	if os.Getenv("KEYFERRY_NODE") != "1" {
		t.Skip("the real-node test needs root and changes the host; run `make test-node` (sets KEYFERRY_NODE=1)")
	}
	if os.Getenv(envChild) == "1" {
		runChildNode(t)
		return
	}
	sysctlsBefore := readSysctls(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRunIsSweptByTheNext$", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envChild+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !found && strings.Contains(sc.Text(), "CHILD-POD-RUNNING") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("the child node exited before its pod ran:\n%s", log.String())
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the child node's pod never ran:\n%s", log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The leftovers are real: a pod process outlives the killed run.
	n := podProcesses()
	if n == 0 {
		t.Fatal("no pod process survived the killed run; the test proves nothing")
	}
	t.Logf("%d pod processes survived the killed run", n)
	if _, err := os.Stat(testnode.BaseDir); err != nil {
		t.Fatalf("the killed run left no %s: %v", testnode.BaseDir, err)
	}

	if err := testnode.Sweep(t.Logf); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if n := podProcesses(); n != 0 {
		t.Errorf("%d pod processes survive the sweep", n)
	}
	for _, p := range []string{testnode.BaseDir, "/sys/class/net/" + testnode.Bridge, "/sys/fs/cgroup/memory/kubepods"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survives the sweep", p)
		}
	}
	for _, table := range []string{"filter", "nat", "mangle"} {
		b, err := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "KEYFERRY-NODE") || strings.Contains(string(b), "KUBE-") {
			t.Errorf("iptables %s keeps the node's chains:\n%s", table, b)
		}
	}
	if after := readSysctls(t); after != sysctlsBefore {
		t.Errorf("sysctls after the sweep %s, before the run %s", after, sysctlsBefore)
	}
}

// runChildNode starts a node with one running pod, says so, and waits to be
// killed.
func runChildNode(t *testing.T) {
	node := testnode.Start(t, testnode.Options{})
	pause, err := testnode.ImageRef(node.PauseImage())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "leftover", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "pause", Image: pause, ImagePullPolicy: corev1.PullNever,
		}}},
	}
	if _, err := node.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := node.Clientset.CoreV1().Pods("default").Get(ctx, "leftover", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("the pod never ran: %v", err)
	}
	fmt.Println("CHILD-POD-RUNNING")
	select {} // until SIGKILL
}

// podProcesses counts the processes in the kubelet's pod cgroups.
func podProcesses() int {
	n := 0
	_ = filepath.WalkDir("/sys/fs/cgroup/pids/kubepods", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
			b, _ := os.ReadFile(p)
			n += len(strings.Fields(string(b)))
		}
		return nil
	})
	return n
}

func readSysctls(t *testing.T) string {
	t.Helper()
	var out []string
	for _, k := range []string{"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "net/ipv4/ip_forward"} {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(out, " ")
}
